"""A record_many that stops midway says exactly how far it got.

The error is a BatchAbortedError that is also the error that stopped the import (a full server,
a lost connection, text that is not valid Unicode): ``applied`` events went through, nothing
from ``first_unapplied`` on was applied. Each test checks the claim against the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
import redis
import redis.asyncio

import training_analytics as ta

from .factories import NOW
from .stores import ONE_SERVER, RAW_KEYS

AT = "2025-06-01T10:00:00Z"


def _enrolments(count: int, start: int = 0) -> list[Any]:
    return [
        ta.EnrollmentEvent(user_id=f"learner-{i:06d}", course_id="c1", at=AT)
        for i in range(start, start + count)
    ]


def _applied_in_store(client: redis.Redis) -> int:
    count = client.scard("training:enrollments:c1")
    # Every part of each event or none: the series and the day counter agree with the set.
    assert client.zcard("training:enrollment:timeseries") == count
    assert int(client.get("training:enrollment:date:2025-06-01") or 0) == count
    return count


@RAW_KEYS
@pytest.mark.parametrize("stream", [False, True], ids=["batched", "streamed"])
def test_a_server_filling_up_midway_stops_the_import_at_a_batch_boundary(
    analytics: Any, client: redis.Redis, stream: bool
) -> None:
    # Freed now, not lazily, and no earlier lazy free pending: a true baseline for used_memory.
    cast(Any, client).execute_command("FLUSHDB", "SYNC")
    analytics.record_module_start("first", "c0", "m1")  # code loaded, store marked
    deadline = time.monotonic() + 10
    while int(client.info("memory").get("lazyfree_pending_objects", 0)) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.01)
    used = int(client.info("memory")["used_memory"])
    old = str(client.config_get("maxmemory")["maxmemory"])
    policy = str(client.config_get("maxmemory-policy")["maxmemory-policy"])
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", used + 300_000)
    try:
        with pytest.raises(ta.BatchAbortedError) as raised:
            analytics.record_many(_enrolments(20_000), batch_size=200, stream=stream)
    finally:
        client.config_set("maxmemory", old)
        client.config_set("maxmemory-policy", policy)
    error = raised.value
    assert isinstance(error, ta.StoreFullError)
    assert 0 < error.first_unapplied < 20_000
    assert error.first_unapplied % 200 == 0
    assert error.applied == error.first_unapplied and error.in_doubt == 0
    assert error.result.applied == error.applied  # type: ignore[attr-defined]
    assert _applied_in_store(client) == error.applied
    assert f"events from {error.first_unapplied} on were not applied" in str(error)
    # Resuming from first_unapplied completes the import.
    result = analytics.record_many(_enrolments(20_000 - error.first_unapplied, error.applied))
    assert result.applied == 20_000 - error.first_unapplied
    assert _applied_in_store(client) == 20_000


@RAW_KEYS
def test_unencodable_text_is_found_before_anything_is_sent(
    analytics: Any, client: redis.Redis
) -> None:
    events = _enrolments(250)
    events.append(ta.EnrollmentEvent(user_id="x\ud800y", course_id="c1", at=AT))
    events += _enrolments(50, 1000)
    with pytest.raises(ta.InvalidIdError):
        analytics.record_many(events, batch_size=100)
    assert client.dbsize() == 0
    # Streamed: its own batch is refused before it is sent, after the two before it applied.
    with pytest.raises(ta.BatchAbortedError, match="event 250") as raised:
        analytics.record_many(events, batch_size=100, stream=True)
    assert isinstance(raised.value, ta.InvalidIdError)
    assert (raised.value.applied, raised.value.first_unapplied) == (200, 200)
    assert _applied_in_store(client) == 200


def _killing(client: redis.Redis, name: str, after: int, events: list[Any]) -> Iterator[Any]:
    """The events, killing the importer's connection (by client name) after ``after`` of them."""
    for i, event in enumerate(events):
        if i == after:
            for connection in client.client_list():
                if connection["name"] == name:
                    client.client_kill_filter(_id=connection["id"])
        yield event


def _check_lost(error: ta.BatchAbortedError, client: redis.Redis) -> None:
    assert isinstance(error, ta.StoreUnavailableError)
    # The server was asked afterwards how far the stream got: nothing is in doubt.
    assert error.in_doubt == 0
    assert 0 < error.applied == error.first_unapplied <= 650
    assert error.applied % 50 == 0
    assert _applied_in_store(client) == error.applied
    assert not list(client.scan_iter("training:ingest:*"))


@ONE_SERVER
def test_a_lost_connection_midway_is_reported_with_what_was_applied(
    client: redis.Redis, redis_url: str
) -> None:
    importer = redis.Redis.from_url(redis_url, decode_responses=True, client_name="importer")
    analytics = ta.TrainingAnalytics(importer, clock=lambda: NOW)
    events = _killing(client, "importer", 620, _enrolments(2000))
    with pytest.raises(ta.BatchAbortedError) as raised:
        analytics.record_many(events, batch_size=50, stream=True)
    _check_lost(raised.value, client)
    importer.close()


@ONE_SERVER
def test_a_lost_connection_midway_async(client: redis.Redis, redis_url: str) -> None:
    async def scenario() -> ta.BatchAbortedError:
        importer = redis.asyncio.Redis.from_url(redis_url, client_name="aimporter")
        analytics = ta.AsyncTrainingAnalytics(importer, clock=lambda: NOW)
        events = _killing(client, "aimporter", 620, _enrolments(2000))
        try:
            await analytics.record_many(events, batch_size=50, stream=True)
        except ta.BatchAbortedError as exc:
            return exc
        finally:
            await importer.aclose()
        raise AssertionError("the import did not stop")

    _check_lost(asyncio.run(scenario()), client)


def test_the_error_is_still_the_one_callers_catch() -> None:
    cause = ta.InvalidIdError("bad id")
    error = ta.BatchAbortedError.of(
        cause, applied=3, first_unapplied=5, result=ta.BatchResult(), message="stopped"
    )
    assert isinstance(error, ta.InvalidIdError | ValueError)
    assert (error.applied, error.first_unapplied, error.in_doubt) == (3, 5, 2)
    lost = ta.BatchAbortedError.of(
        ta.StoreUnavailableError("gone"),
        applied=0,
        first_unapplied=0,
        result=ta.BatchResult(),
        message="x",
    )
    assert isinstance(lost, ConnectionError)
    assert type(lost) is type(
        ta.BatchAbortedError.of(
            ta.StoreUnavailableError("again"),
            applied=0,
            first_unapplied=0,
            result=ta.BatchResult(),
            message="x",
        )
    )


@pytest.mark.parametrize("bad", [None, 5, "events", {"kind": "enrollment"}])
def test_events_that_are_not_an_iterable_of_events_are_refused(analytics: Any, bad: Any) -> None:
    with pytest.raises(ta.InvalidInputError):
        analytics.record_many(bad)


@pytest.mark.parametrize("size", ["10", 0, 2.5, True])
def test_a_batch_size_that_is_not_a_positive_integer_is_refused(analytics: Any, size: Any) -> None:
    with pytest.raises(ta.InvalidInputError):
        analytics.record_many(_enrolments(3), batch_size=size)


def test_a_single_write_with_unencodable_text_is_refused_before_sending(
    analytics: Any, client: redis.Redis
) -> None:
    with pytest.raises(ta.InvalidInputError):
        analytics.record_enrollment("x\udc80", "c1", at=AT)
    with pytest.raises(ta.InvalidInputError):
        analytics.get_course_enrollment_count("c\ud800")
    assert client.dbsize() == 0


def test_an_unencodable_event_alone_in_the_last_batch_stops_nothing_midway(
    analytics: Any, client: redis.Redis
) -> None:
    events = [*_enrolments(4), ta.EnrollmentEvent(user_id="z\ud800", course_id="c1", at=AT)]
    with pytest.raises(ta.InvalidInputError, match="event 4"):
        analytics.record_many(events, batch_size=2)
    assert client.dbsize() == 0
