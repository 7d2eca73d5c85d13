"""Submitted batches (bulk ingest with stream=True): sent on one connection, read in order.

The operations here are hand-written generators, so that something can happen between two
submits (the server losing its code, the connection being killed) exactly where a real
import could meet it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any

import pytest
import redis
import redis.asyncio

import training_analytics as ta
from training_analytics._context import Context
from training_analytics._exec import arun, run
from training_analytics._protocol import Await, Request, Submit
from training_analytics._writes import EventBatch, request

from .factories import NOW, certification
from .stores import ONE_SERVER

pytestmark = ONE_SERVER

ISSUED = ta.TrainingCertificationRecord.model_validate(certification("cert1"))


def _issue(ctx: Context) -> EventBatch:
    events = EventBatch(ctx)
    events.enrollment("u0", "c1", NOW)
    events.certification_issued(ISSUED, NOW)
    return events


def _claim(ctx: Context) -> EventBatch:
    events = EventBatch(ctx)
    events.certification_status("cert1", "claimed", "2025-06-02T10:00:00.000Z", NOW)
    events.enrollment("u1", "c1", NOW)
    return events


def _enrol(ctx: Context, user: str) -> EventBatch:
    events = EventBatch(ctx)
    events.enrollment(user, "c1", NOW)
    events.enrollment(f"{user}-b", "c1", NOW)
    return events


def _import(
    ctx: Context, between: Callable[[], object]
) -> Generator[Request, Any, list[list[Any]]]:
    """Submit a first batch, call ``between``, submit three more (the claim needs the issue
    before it), then await all four."""
    tickets = [(yield Submit(request(_enrol(ctx, "first"))))]
    between()
    for events in (_issue(ctx), _claim(ctx), _enrol(ctx, "last")):
        tickets.append((yield Submit(request(events))))
    replies = []
    for ticket in tickets:
        replies.append((yield Await(ticket)))
    return replies


def _flush_functions(client: redis.Redis) -> Callable[[], object]:
    return lambda: client.function_flush("SYNC")


def test_code_lost_between_batches_is_loaded_and_order_kept(client: redis.Redis) -> None:
    replies = run(_import(Context(), _flush_functions(client)), client)
    assert replies == [[[1, 1]], [[1, 1]], [[1, 1]], [[1, 1]]]
    assert client.hget("training:certification:cert1", "status") == "claimed"
    assert client.scard("training:enrollments:c1") == 6


def test_code_lost_between_batches_async(client: redis.Redis, redis_url: str) -> None:
    async def scenario() -> list[list[Any]]:
        aclient = redis.asyncio.Redis.from_url(redis_url)
        try:
            return await arun(_import(Context(), _flush_functions(client)), aclient)
        finally:
            await aclient.aclose()

    assert asyncio.run(scenario()) == [[[1, 1]], [[1, 1]], [[1, 1]], [[1, 1]]]
    assert client.hget("training:certification:cert1", "status") == "claimed"


def test_a_killed_connection_is_reported_not_hidden(client: redis.Redis, redis_url: str) -> None:
    importer = redis.Redis.from_url(redis_url, decode_responses=True, client_name="importer")

    def kill_the_importer() -> None:
        # Its pool holds one connection: the one its batches go out on.
        for connection in client.client_list():
            if connection["name"] == "importer":
                client.client_kill_filter(_id=connection["id"])

    with pytest.raises(ta.StoreUnavailableError, match="may or may not have been applied"):
        run(_import(Context(), kill_the_importer), importer)
    # The pool is usable afterwards.
    assert ta.TrainingAnalytics(importer).get_course_enrollment_count("c1") >= 2
    importer.close()


def test_a_single_connection_client_runs_batches_as_submitted(
    client: redis.Redis, redis_url: str
) -> None:
    single = redis.Redis.from_url(redis_url, decode_responses=True, single_connection_client=True)
    analytics = ta.TrainingAnalytics(single)
    events = [ta.EnrollmentEvent(user_id=f"u{i}", course_id="c1", at=NOW) for i in range(25)]
    result = analytics.record_many(events, batch_size=4, stream=True)
    assert (result.applied, result.unchanged, result.rejected) == (25, 0, [])
    assert client.scard("training:enrollments:c1") == 25
    single.close()


def test_nothing_is_left_unread_when_an_import_fails_midway(analytics: Any) -> None:
    events: list[Any] = [
        ta.EnrollmentEvent(user_id=f"u{i}", course_id="c1", at=NOW) for i in range(10)
    ]
    events.append({"kind": "enrollment", "userId": "bad:id", "courseId": "c1"})
    # Batches of three: the first nine events went out; the tenth shares the bad one's batch.
    with pytest.raises(ta.InvalidInputError, match="events from 9 on were not applied"):
        analytics.record_many(events, batch_size=3, stream=True)
    # The same facade (and its connections) answers normally afterwards.
    assert analytics.get_course_enrollment_count("c1") == 9
    assert analytics.record_enrollment("u0", "c1", at=NOW) is False
