"""An unknown course id is an error, not a course nobody took (issue 9, item 8)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import training_analytics as ta

from .factories import course, snapshot


def test_a_course_neither_in_the_catalog_nor_with_events_is_not_found(
    analytics: Any, client: redis.Redis
) -> None:
    analytics.create_training_course(course("c1"))
    analytics.record_enrollment("u1", "c1")
    before = snapshot(client)
    with pytest.raises(ta.CourseNotFoundError, match="does-not-exist"):
        analytics.get_course_detailed_analytics("does-not-exist")
    assert snapshot(client) == before


def test_an_empty_store_says_not_found_too(analytics: Any) -> None:
    with pytest.raises(ta.CourseNotFoundError):
        analytics.get_course_detailed_analytics("does-not-exist")


def test_a_catalog_course_without_learners_answers_zeros(analytics: Any) -> None:
    analytics.create_training_course(course("c1", modules=2))
    report = analytics.get_course_detailed_analytics("c1")
    assert (report.enrollments, report.completions, report.completion_rate) == (0, 0, 0)
    assert [r.dropoff_rate for r in report.dropoff_rates] == [0, 0]


def test_a_course_with_events_but_no_catalog_entry_still_answers(analytics: Any) -> None:
    # Older stores hold activity for courses that were never (or are no longer) in the catalog.
    analytics.record_enrollment("u1", "legacy")
    analytics.record_enrollment("u2", "legacy")
    analytics.record_completion("u1", "legacy")
    report = analytics.get_course_detailed_analytics("legacy")
    assert (report.enrollments, report.completions, report.completion_rate) == (2, 1, 50)
    assert report.dropoff_rates == []


def test_a_deleted_course_with_learners_still_answers(analytics: Any) -> None:
    analytics.create_training_course(course("c1"))
    analytics.record_enrollment("u1", "c1")
    analytics.delete_training_course("c1")
    assert analytics.get_course_detailed_analytics("c1").enrollments == 1
