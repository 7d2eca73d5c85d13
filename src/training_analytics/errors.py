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
    """An argument is malformed; nothing was written."""


class InvalidIdError(InvalidInputError):
    """An id is empty, too long, or contains a character that would break a Redis key."""


class InvalidDateError(InvalidInputError):
    """A date or timestamp does not parse, or a datetime has no time zone."""


class InvalidDateRangeError(InvalidInputError):
    """A date range ends before it starts, or is longer than the configured maximum."""


class InvalidScoreError(InvalidInputError):
    """A score is outside 0-100."""


class InvalidDurationError(InvalidInputError):
    """A duration (minutes spent, course length) is negative."""


class InvalidStatusError(InvalidInputError):
    """A status is not one of the allowed values."""


# --- state the server refused ------------------------------------------------------------------


class NotFoundError(TrainingAnalyticsError, LookupError):
    """The record does not exist."""


class CertificationNotFoundError(NotFoundError):
    """No certification with this id."""


class CourseNotFoundError(NotFoundError):
    """No course with this id."""


class ApiKeyNotFoundError(NotFoundError):
    """No API key with this name."""


class ConflictError(TrainingAnalyticsError):
    """The request contradicts what the store holds; nothing was written."""


class IllegalTransitionError(ConflictError):
    """A certification status change that the lifecycle does not allow (e.g. claimed -> issued)."""


class CertificationExpiredError(ConflictError):
    """A claim was made at or after the certification's expiry."""


class CertificationExistsError(ConflictError):
    """A certification with this id exists with different data."""


class StatementConflictError(ConflictError):
    """An xAPI statement id is held by a different statement; nothing was written."""


class CourseExistsError(ConflictError):
    """A course with this id exists already."""


class ApiKeyExistsError(ConflictError):
    """An API key with this name exists already."""


class ConcurrentUpdateError(ConflictError):
    """A record kept changing under an optimistic update; retry later."""


# --- the store -------------------------------------------------------------------------------


class NotIndexedError(TrainingAnalyticsError):
    """The store holds data written by the older system but no derived keys yet.

    Run ``training-analytics reindex`` (or ``reindex()``) once; afterwards every read is exact.
    """


class StoreUnavailableError(TrainingAnalyticsError, ConnectionError):
    """The Redis / Valkey server could not be reached or timed out."""


class StoreError(TrainingAnalyticsError):
    """The server answered with an error this library did not expect."""


class EmbeddedServerError(TrainingAnalyticsError):
    """The embedded Valkey server could not be started or reached."""
