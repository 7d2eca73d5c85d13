"""The key layout a cluster store was written in: ``training:meta:layout:{:meta}``.

A cluster store's keys depend on two choices: the layout (``cluster``) and the number of
certificate buckets (a certificate's bucket is its id's CRC32 modulo that number). A facade
with another bucket count would file certificates under buckets the store's readers never read,
so the store records both once, as a JSON string, with its first write that changes it (or by
``migrate``), and every writer compares its own with the record before its first write: a
difference refuses the write (``LayoutMismatchError``, nothing written), as a different time
zone does (``zone.py``, whose round trip this check shares: the two records are read with one
MGET, both in ``{:meta}``).

The single-server layout has no record: it is the older system's, which never wrote one, so
its writes and their cost stay what they were (no extra key, no extra command).
"""

from __future__ import annotations

import json
from typing import Any

from ._context import Context
from ._protocol import Op, batch, cmd, single
from .errors import LayoutMismatchError, StoreError
from .keys import TrainingKeys

__all__ = ["check_layout", "get_recorded_layout", "layout_value", "record_layout"]


def layout_value(keys: TrainingKeys) -> str:
    """The record a store written with ``keys`` holds (compact JSON, fixed field order)."""
    return json.dumps(
        {"layout": keys.layout, "certBuckets": keys.cert_buckets}, separators=(",", ":")
    )


def _parse(value: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"the store's layout record is not JSON: {str(value)[:80]!r}") from exc
    if not isinstance(parsed, dict):
        raise StoreError(f"the store's layout record is not an object: {str(value)[:80]!r}")
    return parsed


def check_layout(keys: TrainingKeys, recorded: Any) -> None:
    """Refuse (LayoutMismatchError) a writer whose layout differs from the recorded one; a
    store without a record (None) accepts any."""
    if recorded is None:
        return
    found = _parse(recorded)
    if found.get("layout") == keys.layout and found.get("certBuckets") == keys.cert_buckets:
        return
    raise LayoutMismatchError(
        f"this store was written in the {found.get('layout')!r} layout with "
        f"{found.get('certBuckets')!r} certificate buckets, and this facade writes the "
        f"{keys.layout!r} layout with {keys.cert_buckets} buckets: certificates would be filed "
        "where the store's readers never look; use the store's bucket count, or "
        "`training-analytics migrate` to change it"
    )


def get_recorded_layout(ctx: Context) -> Op[dict[str, Any] | None]:
    """The recorded layout of a cluster store (``{"layout", "certBuckets"}``), or None when
    nothing was recorded (an empty store) or on a single server (whose layout is the older
    system's and is not recorded)."""
    if not ctx.keys.cluster:
        return None
    value = yield from single("GET", ctx.keys.layout_record())
    return None if value is None else _parse(value)


def record_layout(ctx: Context) -> Op[dict[str, Any] | None]:
    """Record the facade's layout unless one is recorded (cluster only); returns the record
    now in the store. A different record already there is kept and raises."""
    if not ctx.keys.cluster:
        return None
    key = ctx.keys.layout_record()
    _, value = yield batch(cmd("SET", key, layout_value(ctx.keys), "NX"), cmd("GET", key))
    check_layout(ctx.keys, value)
    return _parse(value)
