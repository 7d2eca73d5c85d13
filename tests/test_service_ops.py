"""Operations the HTTP service calls (one per route) that the seed's functions lack."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import training_analytics as ta

from .factories import certification, course, snapshot
from .stores import RAW_KEYS


def test_catalog_writes_return_the_course_as_stored(analytics: Any) -> None:
    created = analytics.create_training_course(course("c1", isPublished=False))
    assert created == analytics.get_training_course("c1")
    assert created.created_at == "2025-06-15T12:00:00.000Z"
    updated = analytics.update_training_course("c1", {"passingScore": 90})
    assert updated == analytics.get_training_course("c1") and updated.passing_score == 90
    published = analytics.publish_training_course("c1")
    assert published.is_published and published == analytics.get_training_course("c1")
    assert not analytics.unpublish_training_course("c1").is_published


def test_find_courses_by_status_and_category(analytics: Any) -> None:
    analytics.create_training_course(course("a", order=3, category="legal"))
    analytics.create_training_course(course("b", order=1, isPublished=False))
    analytics.create_training_course(course("c", order=2))
    assert [c.id for c in analytics.find_training_courses()] == ["b", "c", "a"]
    assert [c.id for c in analytics.find_training_courses(status="published")] == ["c", "a"]
    assert [c.id for c in analytics.find_training_courses(status="draft")] == ["b"]
    assert [c.id for c in analytics.find_training_courses(category="sales")] == ["b", "c"]
    found = analytics.find_training_courses(status="draft", category="legal")
    assert found == []
    with pytest.raises(ta.InvalidInputError, match="status"):
        analytics.find_training_courses(status="archived")


def test_status_change_returns_the_new_record(analytics: Any, client: redis.Redis) -> None:
    analytics.issue_training_certification(certification("x"))
    claimed = analytics.change_certification_status(
        "x", "claimed", claimed_at="2025-06-10T00:00:00Z"
    )
    assert claimed.status == "claimed" and claimed.claimed_at == "2025-06-10T00:00:00.000Z"
    before = snapshot(client)
    with pytest.raises(ta.IllegalTransitionError):
        analytics.change_certification_status("x", "issued")
    with pytest.raises(ta.CertificationNotFoundError):
        analytics.change_certification_status("nope", "revoked")
    assert snapshot(client) == before
    assert analytics.change_certification_status("x", "revoked").status == "revoked"


@RAW_KEYS
def test_invalidating_a_course_cache_counts_the_keys(analytics: Any, client: redis.Redis) -> None:
    client.set("cache:training:analytics:course:c1", "{}")
    client.set("cache:training:analytics:overview", "{}")
    assert analytics.invalidate_course_cache("c1") == 2
    assert analytics.invalidate_course_cache("c1") == 0


def test_series_report_summarises_the_points(analytics: Any) -> None:
    analytics.record_enrollment("u1", "c1", at="2025-06-01T10:00:00Z")
    analytics.record_enrollment("u2", "c1", at="2025-06-03T10:00:00Z")
    analytics.record_enrollment("u3", "c1", at="2025-06-03T11:00:00Z")
    report = analytics.get_series_report("enrollments", "2025-06-01", "2025-06-04")
    assert [p.count for p in report.points] == [1, 0, 2, 0]
    assert report.summary.model_dump(by_alias=True) == {
        "total": 3,
        "average": 0.75,
        "peak": 2,
        "peakDate": "2025-06-03",
    }
    default = analytics.get_series_report("enrollments")  # the 30 days ending today (NOW)
    assert len(default.points) == 30 and default.points[-1].date == "2025-06-15"
    assert default.summary.total == 3
    course = analytics.get_series_report("completions", course_id="c1")
    assert course.summary.total == 0 and course.summary.peak_date is None
    with pytest.raises(ta.InvalidInputError, match="series"):
        analytics.get_series_report("claims")
    with pytest.raises(ta.InvalidDateRangeError):
        analytics.get_series_report("enrollments", "2025-06-05", "2025-06-01")
    with pytest.raises(ta.InvalidDateError):
        analytics.get_series_report("enrollments", None, "June")
    with pytest.raises(ta.InvalidDateRangeError, match="before year 1"):
        analytics.get_series_report("enrollments", None, "0001-01-05")
