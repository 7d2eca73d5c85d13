"""Enrolments, completions, modules and progress through both facades, on a real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

import training_analytics as ta

from .factories import NOW, Factory, course
from .stores import RAW_KEYS

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


@RAW_KEYS
def test_enrolling_twice_counts_once(analytics: Any, client: redis.Redis) -> None:
    assert analytics.record_enrollment("u1", "c1", at=T0) is True
    assert analytics.record_enrollment("u1", "c1", at=T0 + timedelta(days=3)) is False
    assert analytics.get_course_enrollment_count("c1") == 1
    assert analytics.get_course_enrollments("c1") == ["u1"]
    assert client.get("training:enrollment:date:2025-03-01") == "1"
    assert client.get("training:enrollment:date:2025-03-04") is None
    assert client.zrange("training:enrollment:timeseries", 0, -1) == [
        f"{int(T0.timestamp() * 1000)}:u1:c1"
    ]


@RAW_KEYS
def test_completing_enrols_first_and_counts_once(analytics: Any, client: redis.Redis) -> None:
    assert analytics.record_completion("u1", "c1", at=T0) is True
    assert analytics.record_completion("u1", "c1", at=T0 + timedelta(days=1)) is False
    assert analytics.get_course_enrollments("c1") == ["u1"]
    assert analytics.get_course_completions("c1") == ["u1"]
    assert analytics.get_course_completion_count("c1") == 1
    assert client.get("training:enrollment:date:2025-03-01") == "1"
    assert client.get("training:completion:date:2025-03-01") == "1"
    # Completing someone already enrolled adds no second enrolment.
    analytics.record_enrollment("u2", "c1", at=T0)
    analytics.record_completion("u2", "c1", at=T0 + timedelta(days=2))
    assert analytics.get_course_enrollment_count("c1") == 2
    assert client.get("training:enrollment:date:2025-03-01") == "2"
    assert client.get("training:completion:date:2025-03-03") == "1"


def test_module_completion_implies_start(analytics: Any) -> None:
    analytics.create_training_course(course("c1", modules=2))
    assert analytics.record_module_completion("u1", "c1", "m1") is True
    assert analytics.record_module_completion("u1", "c1", "m1") is False
    analytics.record_module_start("u2", "c1", "m1")
    analytics.record_module_start("u2", "c1", "m2")
    assert analytics.get_module_dropoff_rate("c1", "m1") == 50.0
    assert analytics.get_module_dropoff_rate("c1", "m2") == 100.0
    assert analytics.get_module_dropoff_rate("c1", "m9") == 0
    rates = analytics.get_course_module_dropoff_rates("c1")
    assert [(r.module_id, r.module_name, r.dropoff_rate) for r in rates] == [
        ("m1", "Module 1", 50.0),
        ("m2", "Module 2", 100.0),
    ]
    assert analytics.get_course_module_dropoff_rates("unknown") == []


@RAW_KEYS
def test_day_buckets_follow_the_configured_time_zone(
    make_analytics: Factory, client: redis.Redis
) -> None:
    analytics = make_analytics(tz="America/New_York")
    late_evening_in_new_york = datetime(2025, 3, 2, 3, 30, tzinfo=UTC)  # 22:30 on 1 March there
    analytics.record_enrollment("u1", "c1", at=late_evening_in_new_york)
    assert client.get("training:enrollment:date:2025-03-01") == "1"
    series = analytics.get_enrollment_time_series("2025-03-01", "2025-03-02", course_id="c1")
    assert [(p.date, p.count) for p in series] == [("2025-03-01", 1), ("2025-03-02", 0)]


@RAW_KEYS
def test_day_buckets_in_a_zone_whose_offset_is_not_whole_quarter_hours(
    make_analytics: Factory, client: redis.Redis
) -> None:
    # Liberia kept UTC-0:44:30 until 1972: its days began at 00:44:30 UTC, inside a quarter hour.
    analytics = make_analytics(tz="Africa/Monrovia")
    for user, minute in (("before-1", 31), ("before-2", 44), ("after", 45)):
        at = datetime(1960, 3, 1, 0, minute, tzinfo=UTC)
        analytics.record_enrollment(user, "c1", at=at)
    for user, second in (("just-before", 29), ("just-after", 30)):
        analytics.record_enrollment(user, "c1", at=datetime(1960, 3, 2, 0, 44, second, tzinfo=UTC))
    assert client.get("training:enrollment:date:1960-02-29") == "2"
    assert client.get("training:enrollment:date:1960-03-01") == "2"
    assert client.get("training:enrollment:date:1960-03-02") == "1"


def test_at_accepts_iso_strings_and_defaults_to_the_clock(analytics: Any) -> None:
    analytics.record_enrollment("u1", "c1", at="2025-03-01T23:30:00-02:00")
    analytics.record_enrollment("u2", "c1")
    points = analytics.get_daily_enrollment_counts("2025-03-01", "2025-03-02")
    assert [p.count for p in points] == [0, 1]
    today = analytics.get_daily_enrollment_counts(NOW.date(), NOW.date())
    assert today[0].count == 1


def test_time_series_global_and_per_course(analytics: Any) -> None:
    for day in range(5):
        for user in range(day + 1):
            analytics.record_enrollment(f"u{user}", f"c{day % 2}", at=T0 + timedelta(days=day))
    analytics.record_completion("u0", "c0", at=T0 + timedelta(days=4))
    overall = analytics.get_enrollment_time_series("2025-03-01", "2025-03-06")
    # Re-enrolments on later days count once: only learners new to that course add.
    assert [p.count for p in overall] == [1, 2, 2, 2, 2, 0]
    per_course = analytics.get_daily_enrollment_counts("2025-03-01", "2025-03-06", course_id="c1")
    assert [p.count for p in per_course] == [0, 2, 0, 2, 0, 0]
    completions = analytics.get_completion_time_series("2025-03-01", "2025-03-06", course_id="c0")
    assert [p.count for p in completions] == [0, 0, 0, 0, 1, 0]
    assert [p.count for p in analytics.get_daily_completion_counts("2025-03-05", "2025-03-05")] == [
        1
    ]


def _progress(user: str, score: float, started: str, completed: str | None) -> dict[str, Any]:
    return {
        "userId": user,
        "courseId": "c1",
        "status": "completed" if completed else "in_progress",
        "moduleProgress": [{"moduleId": "m1", "status": "completed", "score": score}],
        "overallScore": score,
        "startedAt": started,
        "completedAt": completed,
        "lastAccessedAt": completed or started,
        "totalTimeSpentMinutes": 42,
    }


def test_course_analytics_follow_progress(analytics: Any) -> None:
    analytics.create_training_course(course("c1", modules=2))
    analytics.record_enrollment("u1", "c1", at=T0)
    analytics.record_completion("u2", "c1", at=T0)
    analytics.save_user_course_progress(
        _progress("u1", 81, "2025-03-01T00:00:00Z", "2025-03-01T10:00:00Z")
    )
    analytics.save_user_course_progress(
        _progress("u2", 90, "2025-03-01T00:00:00Z", "2025-03-02T01:00:00Z")
    )
    # Progress of a learner who is not enrolled does not count (as in the seed) ...
    analytics.save_user_course_progress(
        _progress("u3", 10, "2025-03-01T00:00:00Z", "2025-03-01T01:00:00Z")
    )
    result = analytics.get_course_detailed_analytics("c1")
    assert result.enrollments == 2
    assert result.completions == 1
    assert result.completion_rate == 50.0
    assert result.average_score == 86  # (81 + 90) / 2 = 85.5, rounded half up
    assert result.average_time_to_complete == 17.5  # (10 h + 25 h) / 2
    # ... until they enrol, when their saved progress joins the averages.
    analytics.record_enrollment("u3", "c1", at=T0)
    result = analytics.get_course_detailed_analytics("c1")
    assert result.average_score == 60  # (81 + 90 + 10) / 3 = 60.33
    assert result.average_time_to_complete == 12.0  # (10 + 25 + 1) / 3
    # Saving progress again replaces the learner's contribution instead of adding to it.
    analytics.save_user_course_progress(_progress("u3", 70, "2025-03-01T00:00:00Z", None))
    result = analytics.get_course_detailed_analytics("c1")
    assert result.average_score == 80  # (81 + 90 + 70) / 3 = 80.33
    assert result.average_time_to_complete == 17.5
    assert [r.module_id for r in result.dropoff_rates] == ["m1", "m2"]


@RAW_KEYS
def test_progress_round_trips(analytics: Any, client: redis.Redis) -> None:
    analytics.save_user_course_progress(
        _progress("u1", 85.5, "2025-03-01T00:00:00Z", "2025-03-01T10:00:00.250+01:00")
    )
    stored = client.hgetall("training:progress:u1:c1")
    assert stored["completedAt"] == "2025-03-01T09:00:00.250Z"
    assert stored["certificateId"] == ""
    progress = analytics.get_user_course_progress_data("u1", "c1")
    assert progress is not None
    assert progress.overall_score == 85.5
    assert progress.completed_at == "2025-03-01T09:00:00.250Z"
    assert progress.module_progress[0].score == 85.5
    assert progress.certificate_id is None
    assert analytics.get_user_course_progress_data("u9", "c1") is None


def test_overview_and_average_completion(analytics: Any) -> None:
    analytics.create_training_course(course("c1", order=2))
    analytics.create_training_course(course("c2", order=1))
    analytics.create_training_course(course("draft", isPublished=False, order=3))
    for user in range(4):
        analytics.record_enrollment(f"u{user}", "c1", at=T0)
    analytics.record_completion("u0", "c1", at=T0)
    analytics.record_completion("u1", "c2", at=T0)
    analytics.record_enrollment("u9", "draft", at=T0)
    analytics.record_enrollment("u9", "not-in-catalog", at=T0)
    overview = analytics.get_training_overview_metrics()
    assert overview.total_courses == 3
    assert overview.published_courses == 2
    assert overview.draft_courses == 1
    assert overview.total_enrollments == 6  # enrolments in catalogued courses only, as the seed
    assert overview.average_completion_rate == 62.5  # mean of 25% and 100%
    assert overview.total_certifications == 0
    assert analytics.calculate_average_completion() == 62.5
    assert overview.model_dump() == {
        "totalCourses": 3,
        "publishedCourses": 2,
        "draftCourses": 1,
        "totalEnrollments": 6,
        "averageCompletionRate": 62.5,
        "totalCertifications": 0,
    }


@RAW_KEYS
def test_writes_invalidate_the_seed_caches(analytics: Any, client: redis.Redis) -> None:
    client.set("cache:training:analytics:course:c1", "{}")
    client.set("cache:training:analytics:overview", "{}")
    analytics.record_enrollment("u1", "c1", at=T0)
    assert (
        client.exists("cache:training:analytics:course:c1", "cache:training:analytics:overview")
        == 0
    )
    client.set("cache:training:analytics:course:c1", "{}")
    client.set("cache:training:analytics:course:c2", "{}")
    client.set("cache:training:analytics:credentials", "{}")
    assert analytics.invalidate_all_training_caches() == 3
    assert not list(client.scan_iter("cache:*"))
    client.set("cache:training:analytics:course:c1", "{}")
    analytics.invalidate_course_cache("c1")
    assert client.exists("cache:training:analytics:course:c1") == 0


def test_record_many_is_one_batch_of_the_same_events(analytics: Any) -> None:
    events: list[Any] = [
        ta.EnrollmentEvent(user_id=f"u{i}", course_id="c1", at=T0) for i in range(2500)
    ]
    events += [
        ta.CompletionEvent(user_id="u1", course_id="c1", at=T0),
        {"kind": "enrollment", "userId": "u1", "courseId": "c1"},
    ]
    result = analytics.record_many(events, batch_size=1000)
    assert (result.applied, result.unchanged, result.rejected) == (2501, 1, [])
    assert analytics.get_course_enrollment_count("c1") == 2500
    assert analytics.get_daily_enrollment_counts("2025-03-01", "2025-03-01")[0].count == 2500


def test_streamed_record_many_applies_in_order(analytics: Any) -> None:
    events: list[Any] = [
        ta.EnrollmentEvent(user_id=f"u{i % 700}", course_id="c1", at=T0) for i in range(2100)
    ]
    events.append(ta.CompletionEvent(user_id="u1", course_id="c1", at=T0 + timedelta(days=1)))
    result = analytics.record_many(events, batch_size=100, stream=True)
    assert (result.applied, result.unchanged, result.rejected) == (701, 1400, [])
    assert analytics.get_course_enrollment_count("c1") == 700
    assert analytics.get_course_completion_count("c1") == 1


def test_streamed_record_many_stops_at_a_malformed_event(
    analytics: Any, client: redis.Redis
) -> None:
    events: list[Any] = [
        ta.EnrollmentEvent(user_id=f"u{i}", course_id="c1", at=T0) for i in range(250)
    ]
    events.append({"kind": "enrollment", "userId": "bad:id", "courseId": "c1"})
    events += [ta.EnrollmentEvent(user_id=f"v{i}", course_id="c1", at=T0) for i in range(50)]
    with pytest.raises(
        ta.InvalidIdError, match=r"event 250: .*events from 200 on were not applied"
    ) as raised:
        analytics.record_many(events, batch_size=100, stream=True)
    assert isinstance(raised.value, ta.BatchAbortedError)
    assert (raised.value.applied, raised.value.first_unapplied, raised.value.in_doubt) == (
        200,
        200,
        0,
    )
    # The two full batches before the malformed event were applied; its own batch was not sent.
    assert analytics.get_course_enrollment_count("c1") == 200
    # Without stream, nothing at all is written.
    client.flushdb()
    with pytest.raises(ta.InvalidIdError):
        analytics.record_many(events, batch_size=100)
    assert client.dbsize() == 0
