"""Bad input: a clear, typed error, and nothing written."""

from __future__ import annotations

import asyncio
import socket
from datetime import date, datetime
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

import training_analytics as ta

from .factories import NOW, Factory, certification, course, snapshot
from .stores import RAW_KEYS


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
    # Ids that cannot be encoded, or are not strings at all (issue 8, item 4).
    ("record_enrollment", ("u\ud800", "c1"), {}, ta.InvalidIdError),
    ("record_enrollment", (5, "c1"), {}, ta.InvalidIdError),
    ("get_course_enrollment_count", ("c\udfff",), {}, ta.InvalidIdError),
    ("get_course_detailed_analytics", (None,), {}, ta.InvalidIdError),
    ("get_user_course_progress_data", ("u1", "c\ud800"), {}, ta.InvalidIdError),
    ("save_user_course_progress", (_good_progress(userId="u\ud800"),), {}, ta.InvalidIdError),
    (
        "record_many",
        ([{"kind": "enrollment", "userId": "u\ud800", "courseId": "c1"}],),
        {},
        ta.InvalidIdError,
    ),
    (
        "issue_training_certification",
        (certification(userName="Ana \udc00"),),
        {},
        ta.InvalidInputError,
    ),
    ("record_many", (None,), {}, ta.InvalidInputError),
    ("record_many", ([],), {"batch_size": "10"}, ta.InvalidInputError),
    ("record_many", ([],), {"batch_size": True}, ta.InvalidInputError),
    ("update_training_course", ("c0", None), {}, ta.InvalidInputError),
    # Numbers past a float's range (item 4); NaN, infinities, negatives, booleans (item 5).
    (
        "save_user_course_progress",
        (_good_progress(totalTimeSpentMinutes=10**400),),
        {},
        ta.InvalidInputError,
    ),
    ("save_user_course_progress", (_good_progress(overallScore=True),), {}, ta.InvalidInputError),
    (
        "save_user_course_progress",
        (
            _good_progress(
                moduleProgress=[{"moduleId": "m1", "status": "completed", "score": True}]
            ),
        ),
        {},
        ta.InvalidInputError,
    ),
    (
        "save_user_course_progress",
        (_good_progress(totalTimeSpentMinutes=float("inf")),),
        {},
        ta.InvalidDurationError,
    ),
    ("issue_training_certification", (certification(score=False),), {}, ta.InvalidInputError),
    (
        "issue_training_certification",
        (certification(score=float("nan")),),
        {},
        ta.InvalidScoreError,
    ),
    ("create_training_course", (course("c1", order=10**400),), {}, ta.InvalidInputError),
    ("create_training_course", (course("c1", order=2**60),), {}, ta.InvalidInputError),
    ("create_training_course", (course("c1", duration=10**400),), {}, ta.InvalidInputError),
    ("create_training_course", (course("c1", duration=float("nan")),), {}, ta.InvalidDurationError),
    (
        "create_training_course",
        (course("c1", duration=float("-inf")),),
        {},
        ta.InvalidDurationError,
    ),
    ("create_training_course", (course("c1", passingScore=True),), {}, ta.InvalidInputError),
    (
        "create_training_course",
        ({**course("c1"), "modules": [{"id": "m", "title": {}, "duration": float("inf")}]},),
        {},
        ta.InvalidDurationError,
    ),
    (
        "create_training_course",
        (
            {
                **course("c1"),
                "modules": [
                    {
                        "id": "m",
                        "title": {},
                        "lessons": [{"id": "l", "title": {}, "type": "video", "duration": -1}],
                    }
                ],
            },
        ),
        {},
        ta.InvalidDurationError,
    ),
    ("create_training_course", (course("c1", createdAt="yesterday"),), {}, ta.InvalidDateError),
    (
        "create_training_course",
        (course("c1", updatedAt="2025-01-01T00:00:00+24:00"),),
        {},
        ta.InvalidDateError,
    ),
    ("create_training_course", (course("c1", bogus=1),), {}, ta.InvalidInputError),
    ("update_training_course", ("c0", {"bogus": 1}), {}, ta.InvalidInputError),
    ("update_training_course", ("c0", {"createdAt": "soon"}), {}, ta.InvalidDateError),
    ("update_training_course", ("c0", {"order": 10**400}), {}, ta.InvalidInputError),
    # UTC offsets past +-14:00 or malformed, and `at` in forms the single calls refuse (item 5).
    ("record_enrollment", ("u1", "c1"), {"at": "2025-03-01T10:00:00+24:00"}, ta.InvalidDateError),
    ("record_enrollment", ("u1", "c1"), {"at": "2025-03-01T10:00:00+99:99"}, ta.InvalidDateError),
    ("record_completion", ("u1", "c1"), {"at": "2025-03-01T10:00:00-14:30"}, ta.InvalidDateError),
    ("record_enrollment", ("u1", "c1"), {"at": "2025-03-01T10:00:00+0160"}, ta.InvalidDateError),
    (
        "issue_training_certification",
        (certification(expiresAt="2026-06-01T10:00:00+15:00"),),
        {},
        ta.InvalidDateError,
    ),
    (
        "update_certification_status",
        ("cert0", "claimed"),
        {"claimed_at": "2025-06-02T00:00:00+25:00"},
        ta.InvalidDateError,
    ),
    ("record_enrollment", ("u1", "c1"), {"at": date(2025, 3, 1)}, ta.InvalidDateError),
    (
        "record_many",
        ([{"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": date(2025, 3, 1)}],),
        {},
        ta.InvalidDateError,
    ),
    (
        "record_many",
        ([{"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": 1_700_000_000}],),
        {},
        ta.InvalidDateError,
    ),
    (
        "record_many",
        (
            [
                {
                    "kind": "certification_status",
                    "certId": "cert0",
                    "newStatus": "claimed",
                    "claimedAt": 5,
                }
            ],
        ),
        {},
        ta.InvalidDateError,
    ),
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
    analytics.create_training_course(course("c0"))
    analytics.issue_training_certification(certification("cert0"))
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
    with pytest.raises(ta.InvalidInputError, match="prefix"):
        ta.TrainingAnalytics(client, prefix="tenant-\ud800:")
    with pytest.raises(ta.InvalidInputError, match="prefix"):
        ta.TrainingAnalytics(client, prefix=5)  # type: ignore[arg-type]
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


@RAW_KEYS
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


OUT_OF_RANGE: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] = [
    ("Asia/Tokyo", "record_enrollment", ("u1", "c1"), {"at": "9999-12-31T23:00:00Z"}),
    ("America/New_York", "record_completion", ("u1", "c1"), {"at": "0001-01-01T01:00:00Z"}),
    (
        "Asia/Tokyo",
        "record_many",
        ([{"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": "9999-12-31T23:00Z"}],),
        {},
    ),
    ("UTC", "record_enrollment", ("u1", "c1"), {"at": "0001-01-01T00:00:00+01:00"}),
    (
        "UTC",
        "issue_training_certification",
        (certification(expiresAt="9999-12-31T23:00-05:00"),),
        {},
    ),
    ("UTC", "get_enrollment_time_series", ("9999-12-30", "9999-12-31"), {}),
    ("America/New_York", "get_daily_enrollment_counts", ("9999-12-31", "9999-12-31"), {}),
    ("Asia/Tokyo", "get_completion_time_series", ("9999-12-31", "9999-12-31"), {"course_id": "c1"}),
]


@pytest.mark.parametrize(("tz", "method", "args", "kwargs"), OUT_OF_RANGE)
def test_dates_out_of_range_in_the_time_zone_are_invalid_dates(
    make_analytics: Factory,
    client: redis.Redis,
    tz: str,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    analytics = make_analytics(tz=tz)
    analytics.record_enrollment("someone", "c0")
    before = snapshot(client)
    with pytest.raises(ta.InvalidDateError, match=r"9999|year"):
        getattr(analytics, method)(*args, **kwargs)
    assert snapshot(client) == before


@RAW_KEYS
def test_timestamps_are_normalised_and_offsets_up_to_14_hours_accepted(
    analytics: Any, client: redis.Redis
) -> None:
    analytics.create_training_course(
        course("c1", createdAt="2025-01-15T10:30:00+01:00", updatedAt="2025-01-16 08:00Z")
    )
    stored = client.hmget("training:course:c1", "createdAt", "updatedAt")
    assert stored == ["2025-01-15T09:30:00.000Z", "2025-01-16T08:00:00.000Z"]
    analytics.update_training_course("c1", {"createdAt": "2025-01-14T00:00:00-14:00"})
    assert client.hget("training:course:c1", "createdAt") == "2025-01-14T14:00:00.000Z"
    assert analytics.record_enrollment("u1", "c1", at="2025-03-01T10:00:00+14:00")
    assert analytics.record_enrollment("u2", "c1", at="2025-03-01T10:00:00-1200")
    result = analytics.record_many(
        [
            {"kind": "enrollment", "userId": "u3", "courseId": "c1", "at": "2025-03-01"},
            {"kind": "enrollment", "userId": "u4", "courseId": "c1", "at": NOW},
        ]
    )
    assert result.applied == 2
    assert analytics.record_enrollment("u5", "c1", at="2025-03-01")


@RAW_KEYS
def test_a_course_update_leaves_unchanged_stored_timestamps_alone(
    analytics: Any, client: redis.Redis
) -> None:
    analytics.create_training_course(course("c1"))
    client.hset("training:course:c1", "createdAt", "sometime in 2024")  # the older system's
    analytics.update_training_course("c1", {"order": 4})
    assert client.hget("training:course:c1", "createdAt") == "sometime in 2024"
