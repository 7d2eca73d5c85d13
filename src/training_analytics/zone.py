"""The time zone a store's day buckets were written in.

Day counters (``training:enrollment:date:{YYYY-MM-DD}`` and the per-course ones) are keyed by
local dates, so they cannot be re-read in another zone: asking for "Europe/Madrid days" from UTC
buckets would only relabel them. The zone is recorded once, under
``training:meta:time-zone``, by whoever writes the first day buckets: the library's first write
that changes the store (:func:`remember_after_write`), the command line's ``demo`` and
``reindex``, or :func:`record_time_zone`. Readers compare it with their own, and writers refuse
to add buckets in another zone (:func:`check_before_write`): a store never mixes zones.
It sits outside ``training:agg:`` because it is not derived from the base keys (reindex drops
and rebuilds that namespace).

On a cluster the same round trip also reads the store's layout record (``layout.py``): one MGET
of both records (one slot, ``{:meta}``), and the first write that changes the store records
both. The single-server path is unchanged: one GET on a facade's first write, none after.
"""

from __future__ import annotations

from ._context import Context
from ._protocol import Op, batch, cmd, single
from .errors import TimeZoneMismatchError
from .layout import check_layout, layout_value

__all__ = [
    "check_before_write",
    "get_recorded_time_zone",
    "record_time_zone",
    "remember_after_write",
]

#: ``ctx.memo`` entry: "recorded" once the store's zone is known to be the facade's, "absent"
#: while the store has none recorded (the first write that changes the store records it). On a
#: cluster "recorded" means both the zone and the layout are recorded and match the facade's.
_STATE = "time-zone"


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


def check_before_write(ctx: Context) -> Op[None]:
    """Refuse (TimeZoneMismatchError, nothing written) a write whose day buckets would be in
    another zone than the store's. One GET on a facade's first write, none after that: the
    recorded zone is set once and only replaced by resetting the store."""
    if ctx.memo.get(_STATE) == "recorded":
        return
    if ctx.keys.cluster:
        zone, layout = yield from single(
            "MGET", ctx.keys.time_zone_marker(), ctx.keys.layout_record()
        )
        check_layout(ctx.keys, layout)
        recorded = str(zone) if zone else None
        if layout is None and recorded == ctx.tz.key:
            recorded = None  # the layout is to record with the first write that changes the store
    else:
        recorded = yield from get_recorded_time_zone(ctx)
    if recorded is None:
        ctx.memo[_STATE] = "absent"
    elif recorded == ctx.tz.key:
        ctx.memo[_STATE] = "recorded"
    else:
        raise TimeZoneMismatchError(
            f"this store's day buckets are in {recorded}, and this facade writes them in "
            f"{ctx.tz.key}: daily counts of the two zones cannot be mixed; use tz={recorded!r}"
        )


def remember_after_write(ctx: Context) -> Op[None]:
    """After a write that changed the store: record the facade's zone if none was recorded."""
    if ctx.memo.get(_STATE) != "absent":
        return
    if ctx.keys.cluster:
        yield batch(
            cmd("SET", ctx.keys.time_zone_marker(), ctx.tz.key, "NX"),
            cmd("SET", ctx.keys.layout_record(), layout_value(ctx.keys), "NX"),
        )
    else:
        yield from record_time_zone(ctx)
    ctx.memo[_STATE] = "recorded"
