"""A progress save whose values the store already holds changes nothing (issue 13, item 3).

Replaying a file (or saving the same progress again) must not rewrite the learner's hash, move
the course averages, drop a course's cached answer or raise the store version (which tells every
dashboard to fetch again): such a save reports ``unchanged`` (``False``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis

from .factories import course, snapshot
from .stores import RAW_KEYS

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


def _progress(user: str, score: float, completed: str | None = None, **more: Any) -> dict[str, Any]:
    return {
        "userId": user,
        "courseId": "c1",
        "status": "completed" if completed else "in_progress",
        "moduleProgress": [
            {"moduleId": "m1", "status": "completed", "score": score, "attempts": 1},
            {"moduleId": "m2", "status": "in_progress", "startedAt": "2025-03-01T09:00:00.000Z"},
        ],
        "overallScore": score,
        "startedAt": "2025-03-01T08:00:00.000Z",
        "completedAt": completed,
        "lastAccessedAt": completed or "2025-03-01T09:30:00.000Z",
        "totalTimeSpentMinutes": 42,
        **more,
    }


def _figures(analytics: Any) -> tuple[float, float]:
    result = analytics.get_course_detailed_analytics("c1")
    return result.average_score, result.average_time_to_complete


def test_saving_the_same_progress_again_changes_nothing(analytics: Any, client: Any) -> None:
    analytics.create_training_course(course("c1", modules=2))
    analytics.record_enrollment("u1", "c1", at=T0)
    analytics.record_enrollment("u2", "c1", at=T0)
    done = _progress("u1", 81, "2025-03-01T18:00:00.000Z")
    assert analytics.save_user_course_progress(done) is True
    assert analytics.save_user_course_progress(_progress("u2", 90.5)) is True
    figures = _figures(analytics)  # and the course's answer is kept (single layout: cached)
    before, version = snapshot(client), analytics.get_store_version().version

    assert analytics.save_user_course_progress(done) is False
    assert analytics.save_user_course_progress(_progress("u2", 90.5)) is False
    assert snapshot(client) == before
    assert analytics.get_store_version().version == version
    assert _figures(analytics) == figures

    # Any value that differs is a change, and the figures follow it.
    assert analytics.save_user_course_progress(_progress("u2", 90.5, certificateId="x")) is True
    assert analytics.get_store_version().version > version
    assert analytics.save_user_course_progress(_progress("u2", 70)) is True
    assert _figures(analytics) == (76, 10.0)  # (81 + 70) / 2 = 75.5, rounded half up; 10 h


def test_a_replayed_batch_of_saves_reports_unchanged(analytics: Any, client: Any) -> None:
    analytics.create_training_course(course("c1", modules=2))
    events: list[dict[str, Any]] = [
        {"kind": "enrollment", "userId": f"u{n}", "courseId": "c1", "at": T0} for n in range(5)
    ]
    saves = [{"kind": "progress", "progress": _progress(f"u{n}", 60 + n)} for n in range(8)]
    first = analytics.record_many(events + saves)
    assert (first.applied, first.unchanged) == (13, 0)
    figures = _figures(analytics)
    before, version = snapshot(client), analytics.get_store_version().version

    for stream in (False, True):
        replay = analytics.record_many(saves, stream=stream)
        # u5..u7 are not enrolled: their figures wait, kept, and a replay leaves them so.
        assert (replay.applied, replay.unchanged, replay.rejected) == (0, 8, [])
        assert snapshot(client) == before
        assert analytics.get_store_version().version == version
        assert _figures(analytics) == figures

    # Enrolling a learner whose progress waited counts it once, and a replay still changes
    # nothing after that.
    assert analytics.record_enrollment("u7", "c1", at=T0) is True
    after = _figures(analytics)
    assert after != figures
    assert analytics.record_many(saves).unchanged == 8
    assert _figures(analytics) == after


@RAW_KEYS
def test_a_field_the_stored_hash_lacks_is_a_change(analytics: Any, client: redis.Redis) -> None:
    """A hash another program wrote without a field: saving "" there writes the field, so the
    save is applied (an absent field is not the empty string)."""
    analytics.record_enrollment("u1", "c1", at=T0)
    progress = _progress("u1", 81)
    assert analytics.save_user_course_progress(progress) is True
    client.hdel("training:progress:u1:c1", "certificateId")
    assert analytics.save_user_course_progress(progress) is True
    assert client.hget("training:progress:u1:c1", "certificateId") == ""
    assert analytics.save_user_course_progress(progress) is False
