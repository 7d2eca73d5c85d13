"""Typed errors: every failure the library reports is one of these.

Bad input raises a subclass of :class:`InvalidInputError` (also a ``ValueError``) before anything
is sent to the server. Rules the server checks atomically (a certificate that does not exist, a
status change that is not allowed) raise the matching error and leave the store unchanged.
Connection problems surface as :class:`StoreUnavailableError`, never as a bare redis-py error.
"""

from __future__ import annotations


class TrainingAnalyticsError(Exception):
    """Base class of every error this library raises."""


# --- bad input -------------------------------------------------------------------------------


class InvalidInputError(TrainingAnalyticsError, ValueError):
    """An argument is malformed, of the wrong type (``record_many(None)``), or a number past
    what the stored form holds; nothing was written."""


class InvalidIdError(InvalidInputError):
    """An id is empty, too long, or contains a character that would break a Redis key."""


class InvalidDateError(InvalidInputError):
    """A date or timestamp does not parse, has no time zone or a UTC offset past +-14:00, or
    falls outside the years 1-9999 in the configured time zone."""


class InvalidDateRangeError(InvalidInputError):
    """A date range ends before it starts, or is longer than the configured maximum."""


class InvalidScoreError(InvalidInputError):
    """A score is outside 0-100 (or NaN)."""


class InvalidDurationError(InvalidInputError):
    """A duration (minutes spent, course, module or lesson length) is negative, NaN or infinite."""


class InvalidStatusError(InvalidInputError):
    """A status is not one of the allowed values."""


# --- state the server refused ------------------------------------------------------------------


class NotFoundError(TrainingAnalyticsError, LookupError):
    """The record does not exist."""


class CertificationNotFoundError(NotFoundError):
    """No certification with this id."""


class CourseNotFoundError(NotFoundError):
    """No course with this id."""


class ConflictError(TrainingAnalyticsError):
    """The request contradicts what the store holds; nothing was written."""


class IllegalTransitionError(ConflictError):
    """A certification status change that the lifecycle does not allow (e.g. claimed -> issued)."""


class CertificationExpiredError(ConflictError):
    """A claim was made at or after the certification's expiry."""


class CertificationExistsError(ConflictError):
    """A certification with this id exists with different data."""


class CourseExistsError(ConflictError):
    """A course with this id exists already."""


class ConcurrentUpdateError(ConflictError):
    """A record kept changing under an optimistic update; retry later."""


# --- the store -------------------------------------------------------------------------------


class NotIndexedError(TrainingAnalyticsError):
    """The store holds data written by the older system but no derived keys yet.

    Run ``training-analytics reindex`` (or ``reindex()``) once; afterwards every read is exact.
    """


class StaleIndexError(NotIndexedError):
    """Base keys changed behind this library's back since the derived keys were built.

    Another writer (the older system, a script) added learners, completions or certificates
    directly, so figures read from derived keys would be wrong. Run ``training-analytics
    reindex`` (or ``reindex()``); reads that notice the drift raise this rather than answer.
    """


class StoreUnavailableError(TrainingAnalyticsError, ConnectionError):
    """The Redis / Valkey server could not be reached or timed out."""


class StoreError(TrainingAnalyticsError):
    """The server answered with an error this library did not expect."""


class EmbeddedServerError(TrainingAnalyticsError):
    """The embedded Valkey server could not be started or reached."""
