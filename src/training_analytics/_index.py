"""The index marker: are the derived keys complete for this store?

A store this library has always written to has the marker from its first write (set by
``lua/apply.lua``, atomically with that write). A store that
holds data the older system wrote has base keys but no marker: its derived keys (course score and
time sums, per-course day counts, certificate expiry indexes, claim totals) are missing, so reads
that need them raise NotIndexedError until ``reindex`` has run, rather than answering zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._context import Context
from ._protocol import Op, ScriptCall, batch, cmd, load_script
from .errors import CodeUnavailableError, NotIndexedError, StaleIndexError

NOT_INDEXED_MESSAGE = (
    "this store holds training data written by another system but has no derived keys yet; "
    "run `training-analytics reindex` (or TrainingAnalytics.reindex()) once"
)


def base_keys(ctx: Context) -> list[str]:
    # Every event the older system recorded left one of these behind.
    k = ctx.keys
    return [k.enrollment_timeseries(), k.completion_timeseries(), k.all_training_certifications()]


def course_marker(ctx: Context, course_id: str) -> str:
    """The marker a read of one course checks: the store's, or in the cluster layout the
    course's own (set by the course's first write, as ``apply.lua`` does per hash tag)."""
    k = ctx.keys
    return k.index_marker(course_id) if k.cluster else k.index_marker()


def require_index(ctx: Context, course_id: str | None = None) -> Op[None]:
    """For reads whose marker check failed: fine on an empty store (in the cluster layout, a
    course without data), else NotIndexedError."""
    k = ctx.keys
    if k.cluster and course_id is not None:
        # The base keys apply.lua checks for a course's tag.
        keys = [
            k.course_enrollments(course_id),
            k.course_completions(course_id),
            k.course_enrollment_timeseries(course_id),
        ]
    else:
        keys = base_keys(ctx)
    # The marker again, after the base keys and in the same round trip: a first write of this
    # library may have landed since the caller's check, and it sets both at once. Base keys seen
    # with the marker still absent afterwards mean no such write came between: the store really
    # is unindexed. (The marker is only ever removed by reindex, which wants this error.)
    marker = k.index_marker() if course_id is None else course_marker(ctx, course_id)
    present, marked = yield batch(cmd("EXISTS", *keys), cmd("EXISTS", marker))
    if present and not marked:
        raise NotIndexedError(NOT_INDEXED_MESSAGE)


STALE_MESSAGE = (
    "{what} changed since the derived keys were built (another system wrote to it directly: "
    "{detail}); run `training-analytics reindex` (or TrainingAnalytics.reindex()) to bring the "
    "figures up to date"
)
SIZES = load_script("sizes.lua", read_only=True)

SizeCheck = tuple[str, str, Any, Any]
"""(set name, set key, its SCARD, the size recorded in the field ``set:<name>``)."""


def _drift(names: Sequence[str], actual: Sequence[Any], recorded: Sequence[Any]) -> list[str]:
    return [
        f"{name} holds {int(a)}, expected {int(r or 0)}"
        for name, a, r in zip(names, actual, recorded, strict=True)
        if int(a) != int(r or 0)
    ]


def ensure_fresh(what: str, stats_key: str, checks: Sequence[SizeCheck]) -> Op[None]:
    """Raise StaleIndexError unless each set's size equals the size this library recorded.

    Every write of this library that adds to or removes from one of these sets moves its
    recorded size (the ``set:<name>`` field of ``stats_key``) in the same script, and reindex
    sets it, so a difference means the set was written by someone else and the derived figures
    built beside it miss those writes. Reads fetch both in the round trip they already make; a
    difference there is confirmed by one atomic call (a write of this library may have run
    between the two reads of a pipeline), so only real drift raises.
    """
    names = [name for name, _, _, _ in checks]
    if not _drift(names, [c[2] for c in checks], [c[3] for c in checks]):
        return
    keys = (*(key for _, key, _, _ in checks), stats_key)
    fields = tuple(f"set:{name}" for name in names)
    try:
        replies = yield batch(ScriptCall(SIZES, keys, fields))
        sizes = replies[0]
    except CodeUnavailableError:
        # A read-only user on a server without the code, or a full server: read again with plain
        # commands. Not atomic, but a difference seen twice is not a write caught in between.
        *actual, recorded = yield batch(
            *(cmd("SCARD", key) for _, key, _, _ in checks), cmd("HMGET", stats_key, *fields)
        )
        sizes = [*actual, *recorded]
    drift = _drift(names, sizes[: len(names)], sizes[len(names) :])
    if drift:
        raise StaleIndexError(STALE_MESSAGE.format(what=what, detail="; ".join(drift)))
