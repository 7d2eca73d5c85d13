"""The zone a store's day buckets were written in is recorded once (issue 9, item 3)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import training_analytics as ta

from .factories import Factory, course
from .stores import RAW_KEYS
from .test_refusals import dump_all


@RAW_KEYS
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


def test_the_first_write_that_changes_the_store_records_its_zone(
    make_analytics: Factory, redis_url: str
) -> None:
    madrid = make_analytics(tz="Europe/Madrid")
    # A refused write changes nothing, the zone record included.
    before = dump_all(redis_url)
    with pytest.raises(ta.CertificationNotFoundError):
        madrid.update_certification_status("nope", "claimed")
    assert dump_all(redis_url) == before
    assert madrid.get_recorded_time_zone() is None
    madrid.record_enrollment("u1", "c1", at="2025-06-01T23:30:00Z")
    assert madrid.get_recorded_time_zone() == "Europe/Madrid"


def test_record_many_records_its_zone(make_analytics: Factory) -> None:
    tokyo = make_analytics(tz="Asia/Tokyo")
    events = [ta.EnrollmentEvent(user_id=f"u{i}", course_id="c1") for i in range(3)]
    tokyo.record_many(events, batch_size=2, stream=True)
    assert tokyo.get_recorded_time_zone() == "Asia/Tokyo"
    assert make_analytics(tz="UTC", prefix="other:").get_recorded_time_zone() is None


@pytest.mark.parametrize("stream", [False, True])
def test_a_writer_in_another_zone_is_refused_and_writes_nothing(
    make_analytics: Factory, redis_url: str, stream: bool
) -> None:
    make_analytics(tz="Europe/Madrid").record_enrollment("u1", "c1")
    utc = make_analytics(tz="UTC")
    before = dump_all(redis_url)
    with pytest.raises(ta.TimeZoneMismatchError, match="Europe/Madrid"):
        utc.record_enrollment("u2", "c1")
    with pytest.raises(ta.TimeZoneMismatchError):
        utc.record_many([ta.EnrollmentEvent(user_id="u3", course_id="c1")], stream=stream)
    assert dump_all(redis_url) == before
    # A reader in another zone still reads (the command line refuses --tz with its own message).
    assert utc.get_course_enrollment_count("c1") == 1


def test_an_import_in_another_zone_writes_no_course_first(
    make_analytics: Factory, redis_url: str
) -> None:
    """import_records refuses a zone mismatch before its first record, courses included."""
    make_analytics(tz="UTC").record_enrollment("u1", "c1")
    before = dump_all(redis_url)
    records = [
        {"kind": "course", "course": course("c9")},
        {"kind": "enrollment", "userId": "u2", "courseId": "c9"},
    ]
    with pytest.raises(ta.TimeZoneMismatchError):
        make_analytics(tz="America/New_York").import_records(records)
    assert dump_all(redis_url) == before


def test_a_reindex_in_another_zone_is_refused(make_analytics: Factory, redis_url: str) -> None:
    """Reindex rebuilds the per-course day buckets in its facade's zone: not over a store whose
    buckets are in another one."""
    make_analytics(tz="Europe/Madrid").record_enrollment("u1", "c1")
    before = dump_all(redis_url)
    with pytest.raises(ta.TimeZoneMismatchError):
        make_analytics(tz="UTC").reindex()
    assert dump_all(redis_url) == before
    make_analytics(tz="Europe/Madrid").reindex()
