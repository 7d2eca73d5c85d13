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
from ._protocol import Op, single
from .errors import NotIndexedError, StaleIndexError

NOT_INDEXED_MESSAGE = (
    "this store holds training data written by another system but has no derived keys yet; "
    "run `training-analytics reindex` (or TrainingAnalytics.reindex()) once"
)


def base_keys(ctx: Context) -> list[str]:
    # Every event the older system recorded left one of these behind.
    k = ctx.keys
    return [k.enrollment_timeseries(), k.completion_timeseries(), k.all_training_certifications()]


def require_index(ctx: Context) -> Op[None]:
    """For reads whose marker check failed: fine on an empty store, else NotIndexedError."""
    present = yield from single("EXISTS", *base_keys(ctx))
    if present:
        raise NotIndexedError(NOT_INDEXED_MESSAGE)


STALE_MESSAGE = (
    "{what} changed since the derived keys were built (another system wrote to it directly: "
    "{detail}); run `training-analytics reindex` (or TrainingAnalytics.reindex()) to bring the "
    "figures up to date"
)


def check_fresh(what: str, pairs: Sequence[tuple[str, Any, Any]]) -> None:
    """Raise StaleIndexError unless each set's size equals the size this library recorded.

    ``pairs``: (set name, SCARD reply, recorded size or None). Every write of this library that
    adds to or removes from a set moves its recorded size in the same script, and reindex sets
    it, so a difference means the set was written by someone else and the derived figures built
    beside it miss those writes. The reads fetch both in the round trip they already make.
    """
    drift = [
        f"{name} holds {int(actual)}, expected {int(recorded or 0)}"
        for name, actual, recorded in pairs
        if int(actual) != int(recorded or 0)
    ]
    if drift:
        raise StaleIndexError(STALE_MESSAGE.format(what=what, detail="; ".join(drift)))
