"""Operations the dashboard needs that the API lacked: the store version (raised by every
write that changes training data, in the same atomic call) and a course's module funnel."""

from __future__ import annotations

from typing import Any

import pytest

import training_analytics as ta

from .factories import certification, course
from .stores import RAW_KEYS


def version(analytics: Any) -> int:
    value: int = analytics.get_store_version().version
    return value


def test_version_starts_at_zero_and_every_kind_of_write_raises_it(analytics: Any) -> None:
    assert version(analytics) == 0
    seen = [0]

    def raised() -> bool:
        now = version(analytics)
        moved = now > seen[-1]
        seen.append(now)
        return moved

    analytics.create_training_course(course("c1"))
    assert raised()
    analytics.update_training_course("c1", {"passingScore": 80})
    assert raised()
    analytics.unpublish_training_course("c1")
    assert raised()
    analytics.record_enrollment("u1", "c1")
    assert raised()
    analytics.record_module_start("u1", "c1", "m1")
    assert raised()
    analytics.record_module_completion("u1", "c1", "m1")
    assert raised()
    analytics.record_completion("u1", "c1")
    assert raised()
    analytics.issue_training_certification(certification("x"))
    assert raised()
    analytics.update_certification_status("x", "claimed", claimed_at="2025-06-14T00:00:00Z")
    assert raised()
    analytics.record_many([ta.EnrollmentEvent(user_id=f"b{i}", course_id="c1") for i in range(5)])
    assert raised()
    analytics.delete_training_course("c1")
    assert raised()


def test_a_batch_raises_the_version_once(analytics: Any) -> None:
    analytics.record_many([ta.EnrollmentEvent(user_id=f"u{i}", course_id="c1") for i in range(50)])
    assert version(analytics) == 1


def test_replays_and_refusals_leave_the_version_alone(analytics: Any) -> None:
    analytics.record_enrollment("u1", "c1")
    before = version(analytics)
    assert analytics.record_enrollment("u1", "c1") is False  # a replay changes nothing
    analytics.record_many([ta.EnrollmentEvent(user_id="u1", course_id="c1")])
    with pytest.raises(ta.CertificationNotFoundError):
        analytics.update_certification_status("nope", "claimed")
    assert version(analytics) == before


def test_reindex_raises_the_version_and_keeps_it(analytics: Any) -> None:
    analytics.record_enrollment("u1", "c1")
    before = version(analytics)
    analytics.reindex()
    assert version(analytics) == before + 1


@RAW_KEYS
def test_a_broken_version_key_does_not_fail_writes(analytics: Any, client: Any) -> None:
    client.set(analytics.keys.store_version(), "not a number")
    assert analytics.record_enrollment("u1", "c1") is True
    analytics.create_training_course(course("c1"))
    assert analytics.get_course_enrollment_count("c1") == 1
    assert analytics.get_training_course("c1") is not None
    with pytest.raises(ta.StoreError, match="not a counter"):
        analytics.get_store_version()


def test_funnel_counts_learners_per_module_in_course_order(analytics: Any) -> None:
    analytics.create_training_course(course("c1", modules=3))
    for user in ("a", "b", "c", "d"):
        analytics.record_enrollment(user, "c1")
        analytics.record_module_start(user, "c1", "m1")
    for user in ("a", "b", "c"):
        analytics.record_module_completion(user, "c1", "m1")
    for user in ("a", "b"):
        analytics.record_module_start(user, "c1", "m2")
    analytics.record_module_completion("a", "c1", "m2")
    steps = analytics.get_course_module_funnel("c1")
    assert [(s.module_id, s.started, s.completed) for s in steps] == [
        ("m1", 4, 3),
        ("m2", 2, 1),
        ("m3", 0, 0),
    ]
    assert [s.dropoff_rate for s in steps] == [25.0, 50.0, 0]
    # 3 completed m1, 2 started m2: a third dropped between them; 1 completed m2, 0 started m3.
    assert [s.dropoff_to_next for s in steps] == [33.33, 100.0, None]
    assert steps[0].module_name == "Module 1"
    # The drop-off agrees with the seed's read.
    assert [s.dropoff_rate for s in steps] == [
        d.dropoff_rate for d in analytics.get_course_module_dropoff_rates("c1")
    ]


def test_funnel_of_a_course_without_modules_or_unknown(analytics: Any) -> None:
    analytics.create_training_course(course("empty", modules=0))
    assert analytics.get_course_module_funnel("empty") == []
    assert analytics.get_course_module_funnel("nope") == []
    with pytest.raises(ta.InvalidIdError):
        analytics.get_course_module_funnel("bad:id")
