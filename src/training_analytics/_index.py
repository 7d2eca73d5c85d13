"""The index marker: are the derived keys complete for this store?

A store this library has always written to has the marker from its first write (set by
``lua/apply.lua``, atomically with that write). A store that
holds data the older system wrote has base keys but no marker: its derived keys (course score and
time sums, per-course day counts, certificate expiry indexes, claim totals) are missing, so reads
that need them raise NotIndexedError until ``reindex`` has run, rather than answering zeros.
"""

from __future__ import annotations

from ._context import Context
from ._protocol import Op, single
from .errors import NotIndexedError

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
