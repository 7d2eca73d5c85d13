"""The zone a store's day buckets were written in is recorded once (issue 9, item 3)."""

from __future__ import annotations

from typing import Any

import redis

from .factories import Factory


def test_the_first_zone_recorded_stays(make_analytics: Factory, client: redis.Redis) -> None:
    madrid = make_analytics(tz="Europe/Madrid")
    assert madrid.get_recorded_time_zone() is None
    assert madrid.record_time_zone() == "Europe/Madrid"
    utc = make_analytics(tz="UTC")
    # Buckets already written in Madrid days stay Madrid days: the record is not replaced.
    assert utc.record_time_zone() == "Europe/Madrid"
    assert utc.get_recorded_time_zone() == "Europe/Madrid"
    assert client.get("training:meta:time-zone") == "Europe/Madrid"


def test_the_record_is_per_prefix_and_survives_reindex(make_analytics: Factory) -> None:
    tenant: Any = make_analytics(prefix="tenant-a:", tz="Asia/Tokyo")
    tenant.record_time_zone()
    tenant.record_enrollment("u1", "c1")
    tenant.reindex()
    assert tenant.get_recorded_time_zone() == "Asia/Tokyo"
    assert make_analytics().get_recorded_time_zone() is None
