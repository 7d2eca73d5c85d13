"""The time zone a store's day buckets were written in.

Day counters (``training:enrollment:date:{YYYY-MM-DD}`` and the per-course ones) are keyed by
local dates, so they cannot be re-read in another zone: asking for "Europe/Madrid days" from UTC
buckets would only relabel them. The zone is recorded once, under
``training:meta:time-zone``, by whoever writes the first day buckets through the command line
(``demo``, ``reindex``) or by :func:`record_time_zone`; readers compare it with their own.
It sits outside ``training:agg:`` because it is not derived from the base keys (reindex drops
and rebuilds that namespace).
"""

from __future__ import annotations

from ._context import Context
from ._protocol import Op, batch, cmd, single

__all__ = ["get_recorded_time_zone", "record_time_zone"]


def get_recorded_time_zone(ctx: Context) -> Op[str | None]:
    """The zone the store's day buckets were written in, or None if none was recorded."""
    zone = yield from single("GET", ctx.keys.time_zone_marker())
    return str(zone) if zone else None


def record_time_zone(ctx: Context) -> Op[str]:
    """Record the facade's zone unless one is recorded; returns the zone recorded now.

    A different zone already recorded is kept (and returned): the buckets are in that one.
    """
    key = ctx.keys.time_zone_marker()
    _, zone = yield batch(cmd("SET", key, ctx.tz.key, "NX"), cmd("GET", key))
    return str(zone)
