"""Typed errors: every failure the library reports is one of these.

Bad input raises a subclass of :class:`InvalidInputError` (also a ``ValueError``) before anything
is sent to the server. Rules the server checks atomically (a certificate that does not exist, a
status change that is not allowed) raise the matching error and leave the store unchanged.
Connection problems surface as :class:`StoreUnavailableError`, never as a bare redis-py error.
"""

from __future__ import annotations

from typing import ClassVar


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


class TimeZoneMismatchError(InvalidInputError):
    """A write would put day buckets in another time zone than the one the store's were written
    in (``training:meta:time-zone``); nothing was written."""


class LayoutMismatchError(InvalidInputError):
    """A cluster store's recorded key layout (``training:meta:layout:{:meta}``: layout name and
    certificate bucket count) differs from the facade's: its writes would land under keys the
    store's readers never look at; nothing was written."""


class MigrationError(InvalidInputError):
    """``migrate`` cannot run as asked (source and target are the same store, or the target
    holds data or another migration); nothing was written."""


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


class StaleIndexError(NotIndexedError):
    """Base keys changed behind this library's back since the derived keys were built.

    Another writer (the older system, a script) added learners, completions or certificates
    directly, so figures read from derived keys would be wrong. Run ``training-analytics
    reindex`` (or ``reindex()``); reads that notice the drift raise this rather than answer.
    """


class StoreUnavailableError(TrainingAnalyticsError, ConnectionError):
    """The Redis / Valkey server could not be reached or timed out."""


class ClusterModeError(InvalidInputError):
    """The URL and the server disagree about cluster mode: a ``redis+cluster://`` URL names a
    server that is not a cluster node, or a plain ``redis://`` URL names a cluster node (use
    ``redis+cluster://`` for a cluster; its keys must be laid out for one)."""


class StoreError(TrainingAnalyticsError):
    """The server answered with an error this library did not expect (or refused a write because
    a key holds a type another program wrote; nothing was written)."""


class StoreFullError(StoreError):
    """The server is at its ``maxmemory`` (policy noeviction) and refused a write up front;
    nothing was written."""


class CodeUnavailableError(StoreError):
    """The server lacks this library's code and refused to load it (the user may not run
    FUNCTION LOAD / SCRIPT LOAD): someone allowed to must load it (any write as that user does)."""


class BatchAbortedError(TrainingAnalyticsError):
    """``record_many`` stopped before its end. Raised as a subclass of this class *and* of the
    error that stopped it (``InvalidIdError``, ``StoreFullError``, ``StoreUnavailableError``...),
    so that callers catching either still do.

    Events ``[0, applied)`` went through the server (each changed the store, was a replay, or was
    refused on its own: ``result`` lists those whose replies came back); events from
    ``first_unapplied`` on were not applied. Events in between (``in_doubt`` of them, only when
    the connection was lost with batches in flight and their fate could not be read back) may or
    may not have been applied.
    """

    applied: int
    first_unapplied: int
    in_doubt: int
    result: object  # a BatchResult (types imports errors, not the reverse)
    cause: TrainingAnalyticsError

    _kinds: ClassVar[dict[type[TrainingAnalyticsError], type[BatchAbortedError]]] = {}

    @classmethod
    def of(
        cls,
        cause: TrainingAnalyticsError,
        *,
        applied: int,
        first_unapplied: int,
        result: object,
        message: str,
    ) -> BatchAbortedError:
        """The error for a batch import stopped by ``cause``."""
        kind = cls._kinds.get(type(cause))
        if kind is None:
            name = f"BatchAborted{type(cause).__name__}"
            kind = cls._kinds[type(cause)] = type(name, (cls, type(cause)), {})
        error = kind(message)
        error.applied, error.first_unapplied = applied, first_unapplied
        error.in_doubt = first_unapplied - applied
        error.result, error.cause = result, cause
        return error


class LayoutError(TrainingAnalyticsError):
    """A key the store's key layout does not have: the cluster layout has no global day
    counters, global series or caches (their figures are sums over courses and buckets), and
    the single-server layout no per-tag keys (see ``TrainingKeys``)."""


class ClusterUnsupportedError(StoreError):
    """A call sent to a Redis Cluster names keys in several hash slots (the cluster's
    ``CROSSSLOT``), which no node can serve in one command. Every operation of this library
    runs on a cluster and keeps each call's keys in one slot, so none raises this: it comes
    from an application's own operation handed to the cluster executor (a read given to
    ``read_with_api_key`` or ``answer_at``, or ``cluster.executor.run_on_cluster``). Kept, and
    exported, for compatibility: it once also refused operations not yet built for a cluster."""


class EmbeddedServerError(TrainingAnalyticsError):
    """The embedded Valkey server could not be started or reached."""
