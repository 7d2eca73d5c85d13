"""Bad input: a clear, typed error, and nothing written."""

from __future__ import annotations

import asyncio
import socket
from datetime import datetime
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

import training_analytics as ta

from .factories import Factory, snapshot


def _good_progress(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "userId": "u1",
        "courseId": "c1",
        "status": "in_progress",
        "overallScore": 50,
        "startedAt": "2025-03-01T00:00:00Z",
        "lastAccessedAt": "2025-03-01T00:00:00Z",
        "totalTimeSpentMinutes": 10,
        "moduleProgress": [{"moduleId": "m1", "status": "in_progress", "score": 50}],
    }
    data.update(changes)
    return data


CASES: list[tuple[str, tuple[Any, ...], dict[str, Any], type[Exception]]] = [
    ("record_enrollment", ("", "c1"), {}, ta.InvalidIdError),
    ("record_enrollment", ("u:1", "c1"), {}, ta.InvalidIdError),
    ("record_enrollment", ("u1", "c{1}"), {}, ta.InvalidIdError),
    ("record_enrollment", ("u1", "c1"), {"at": datetime(2025, 1, 1)}, ta.InvalidDateError),
    ("record_enrollment", ("u1", "c1"), {"at": "last tuesday"}, ta.InvalidDateError),
    ("record_enrollment", ("u1", "c1"), {"at": "2025-03-01T10:00"}, ta.InvalidDateError),
    ("record_completion", ("u1", " c1"), {}, ta.InvalidIdError),
    ("record_module_start", ("u1", "c1", ""), {}, ta.InvalidIdError),
    ("record_module_completion", ("u1", "c1", "m*"), {}, ta.InvalidIdError),
    ("save_user_course_progress", (_good_progress(overallScore=150),), {}, ta.InvalidScoreError),
    ("save_user_course_progress", (_good_progress(overallScore=-0.5),), {}, ta.InvalidScoreError),
    (
        "save_user_course_progress",
        (_good_progress(totalTimeSpentMinutes=-1),),
        {},
        ta.InvalidDurationError,
    ),
    (
        "save_user_course_progress",
        (_good_progress(completedAt="2025-02-01T00:00:00Z"),),
        {},
        ta.InvalidDateRangeError,
    ),
    (
        "save_user_course_progress",
        (_good_progress(startedAt="01/03/2025"),),
        {},
        ta.InvalidDateError,
    ),
    ("save_user_course_progress", (_good_progress(status="done"),), {}, ta.InvalidInputError),
    ("save_user_course_progress", (_good_progress(userId=""),), {}, ta.InvalidIdError),
    (
        "save_user_course_progress",
        (_good_progress(moduleProgress=[{"moduleId": "m1", "status": "completed", "score": 101}]),),
        {},
        ta.InvalidScoreError,
    ),
    ("update_certification_status", ("c1", "pending"), {}, ta.InvalidStatusError),
    ("update_certification_status", ("c:1", "claimed"), {}, ta.InvalidIdError),
    ("get_daily_enrollment_counts", ("2025-03-02", "2025-03-01"), {}, ta.InvalidDateRangeError),
    ("get_enrollment_time_series", ("2024-01-01", "2025-06-01"), {}, ta.InvalidDateRangeError),
    ("get_completion_time_series", ("2025-02-30", "2025-03-01"), {}, ta.InvalidDateError),
    (
        "get_daily_completion_counts",
        ("2025-03-01", "2025-03-02"),
        {"course_id": "a b"},
        ta.InvalidIdError,
    ),
    ("get_course_detailed_analytics", ("",), {}, ta.InvalidIdError),
    (
        "create_training_course",
        ({"id": "c1", "title": {"en": "x"}, "category": "cooking"},),
        {},
        ta.InvalidInputError,
    ),
    (
        "create_training_course",
        ({"id": "c1", "title": {"en": "x"}, "category": "sales", "passingScore": 120},),
        {},
        ta.InvalidScoreError,
    ),
    (
        "create_training_course",
        ({"id": "c1", "title": {"en": "x"}, "category": "sales", "duration": -5},),
        {},
        ta.InvalidDurationError,
    ),
    (
        "create_training_course",
        (
            {
                "id": "c1",
                "title": {"en": "x"},
                "category": "sales",
                "modules": [{"id": "m", "title": {}}, {"id": "m", "title": {}}],
            },
        ),
        {},
        ta.InvalidInputError,
    ),
    (
        "record_many",
        (
            [
                ta.EnrollmentEvent(user_id="u1", course_id="c1"),
                {"kind": "enrollment", "userId": "u:2", "courseId": "c1"},
            ],
        ),
        {},
        ta.InvalidIdError,
    ),
    (
        "record_many",
        ([ta.EnrollmentEvent(user_id="u1", course_id="c1"), {"kind": "teleport"}],),
        {},
        ta.InvalidInputError,
    ),
    ("record_many", ([],), {"batch_size": 0}, ta.InvalidInputError),
]


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "error"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_bad_input_raises_and_writes_nothing(
    analytics: Any,
    client: redis.Redis,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: type[Exception],
) -> None:
    analytics.record_enrollment("someone", "c0")  # a store that is not empty
    before = snapshot(client)
    with pytest.raises(error) as raised:
        getattr(analytics, method)(*args, **kwargs)
    assert str(raised.value)  # every error says what was wrong
    assert isinstance(raised.value, ta.TrainingAnalyticsError)
    assert snapshot(client) == before


def test_range_limit_is_configurable(make_analytics: Factory) -> None:
    analytics = make_analytics(max_range_days=7)
    assert len(analytics.get_daily_enrollment_counts("2025-03-01", "2025-03-07")) == 7
    with pytest.raises(ta.InvalidDateRangeError, match="maximum is 7"):
        analytics.get_daily_enrollment_counts("2025-03-01", "2025-03-08")


def test_facade_configuration_is_checked(client: redis.Redis) -> None:
    with pytest.raises(ta.InvalidInputError, match="time zone"):
        ta.TrainingAnalytics(client, tz="Mars/Olympus")
    with pytest.raises(ta.InvalidInputError):
        ta.TrainingAnalytics(client, max_range_days=0)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_is_a_typed_error() -> None:
    client = redis.Redis(port=_closed_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    analytics = ta.TrainingAnalytics(client)
    with pytest.raises(ta.StoreUnavailableError, match="unreachable"):
        analytics.get_course_enrollment_count("c1")
    with pytest.raises(ta.StoreUnavailableError):
        analytics.record_enrollment("u1", "c1")

    async def run() -> None:
        aclient = redis.asyncio.Redis(
            port=_closed_port(),
            socket_connect_timeout=1,
            retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
        )
        with pytest.raises(ta.StoreUnavailableError):
            await ta.AsyncTrainingAnalytics(aclient).get_credential_stats()
        await aclient.aclose()

    asyncio.run(run())


def test_a_key_of_the_wrong_type_refuses_one_event_not_the_batch(
    analytics: Any, client: redis.Redis
) -> None:
    client.set("training:enrollments:broken", "not a set")  # written by something else
    result = analytics.record_many(
        [
            ta.EnrollmentEvent(user_id="u1", course_id="c1", at="2025-03-01T10:00:00Z"),
            ta.EnrollmentEvent(user_id="u1", course_id="broken", at="2025-03-01T10:00:00Z"),
            ta.EnrollmentEvent(user_id="u2", course_id="c1", at="2025-03-01T11:00:00Z"),
        ]
    )
    assert result.applied == 2
    assert [(r.index, r.error) for r in result.rejected] == [(1, "StoreError")]
    assert "WRONGTYPE" in result.rejected[0].message
    # The other events' deferred counters were written.
    assert client.get("training:enrollment:date:2025-03-01") == "2"
    with pytest.raises(ta.StoreError):
        analytics.record_enrollment("u3", "broken")
