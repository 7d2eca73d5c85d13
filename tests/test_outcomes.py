"""record_each: one outcome per event, malformed events rejected by index, the others applied."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
import redis

import training_analytics as ta

from .factories import certification, snapshot

AT = "2025-06-10T10:00:00Z"


def _mixed() -> list[tuple[Any, str, str | None]]:
    """(event, expected status, expected error) in input order."""
    cert = certification("cert1", userId="u1", courseId="c1")
    return [
        ({"kind": "enrollment", "user_id": "u1", "course_id": "c1", "at": AT}, "applied", None),
        ("not an event", "rejected", "InvalidInputError"),
        ({"kind": "teleport", "userId": "u1", "courseId": "c1"}, "rejected", "InvalidInputError"),
        (
            {"kind": "enrollment", "userId": "u2", "courseId": "c1", "at": AT},
            "applied",
            None,
        ),
        ({"kind": "enrollment", "userId": "a:b", "courseId": "c1"}, "rejected", "InvalidIdError"),
        (
            {"kind": "enrollment", "userId": "u3", "courseId": "c1", "at": "yesterday"},
            "rejected",
            "InvalidDateError",
        ),
        ({"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": AT}, "unchanged", None),
        ({"kind": "certification_issued", "certification": cert, "at": AT}, "applied", None),
        (
            {"kind": "certification_status", "certId": "cert1", "newStatus": "claimed", "at": AT},
            "applied",
            None,
        ),
        (
            {"kind": "certification_status", "certId": "cert1", "newStatus": "issued"},
            "rejected",
            "IllegalTransitionError",
        ),
        (
            {"kind": "certification_status", "certId": "nope", "newStatus": "claimed"},
            "rejected",
            "CertificationNotFoundError",
        ),
        (
            {
                "kind": "progress",
                "progress": {"userId": "u1", "courseId": "c1", "overallScore": 150},
            },
            "rejected",
            "InvalidScoreError",
        ),
        (ta.ModuleStartEvent(user_id="u1", course_id="c1", module_id="m1"), "applied", None),
        ({"kind": "completion", "userId": "u3"}, "rejected", "InvalidInputError"),
        (
            MappingProxyType({"kind": "completion", "userId": "u3", "courseId": "c1", "at": AT}),
            "applied",
            None,
        ),
        (None, "rejected", "InvalidInputError"),
        (ta.TrainingCourse(id="c9", title={"en": "x"}, category="sales"), "rejected", None),
    ]


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_record_each_reports_every_event_in_order(
    analytics: Any, client: redis.Redis, batch_size: int
) -> None:
    cases = _mixed()
    result = analytics.record_each([event for event, _, _ in cases], batch_size=batch_size)
    assert isinstance(result, ta.EventOutcomes)
    assert [r.index for r in result.results] == list(range(len(cases)))
    assert [r.status for r in result.results] == [status for _, status, _ in cases]
    for outcome, (_, status, error) in zip(result.results, cases, strict=True):
        if status == "rejected":
            assert outcome.error == (error or "InvalidInputError")
            assert outcome.message
        else:
            assert outcome.error is None and outcome.message is None
    statuses = [status for _, status, _ in cases]
    assert (result.applied, result.unchanged, result.rejected) == (
        statuses.count("applied"),
        statuses.count("unchanged"),
        statuses.count("rejected"),
    )
    # The JSON form the HTTP service sends back.
    dumped = result.model_dump(mode="json")
    assert dumped["results"][4] == {
        "index": 4,
        "status": "rejected",
        "error": "InvalidIdError",
        "message": dumped["results"][4]["message"],
    }

    # The rejected events changed nothing: the store is what the accepted events alone make.
    after = snapshot(client)
    client.flushdb()
    accepted = [event for event, status, _ in cases if status != "rejected"]
    again = analytics.record_many(
        [dict(e) if isinstance(e, MappingProxyType) else e for e in accepted]
    )
    assert again.rejected == []
    assert snapshot(client) == after
    assert analytics.get_course_enrollment_count("c1") == 3
    assert analytics.get_course_completion_count("c1") == 1
    record = analytics.get_training_certification("cert1")
    assert record is not None and record.status == "claimed"


def test_record_each_of_nothing_and_of_only_bad_events(analytics: Any, client: redis.Redis) -> None:
    empty = analytics.record_each([])
    assert (empty.results, empty.applied, empty.unchanged, empty.rejected) == ([], 0, 0, 0)
    bad = analytics.record_each(iter([{"kind": "enrollment"}, 42]))
    assert [(r.index, r.status) for r in bad.results] == [(0, "rejected"), (1, "rejected")]
    assert bad.rejected == 2
    assert snapshot(client) == {}


def test_record_each_needs_a_positive_batch_size(analytics: Any) -> None:
    with pytest.raises(ta.InvalidInputError):
        analytics.record_each([], batch_size=0)


def test_record_each_applies_what_record_many_applies(analytics: Any, client: redis.Redis) -> None:
    """Camel- and snake-case dicts and models give the same store as record_many."""
    events: list[Any] = [
        {"kind": "enrollment", "userId": f"u{i}", "courseId": "c1", "at": AT} for i in range(25)
    ]
    events += [
        {"kind": "module_completion", "user_id": f"u{i}", "course_id": "c1", "module_id": "m2"}
        for i in range(10)
    ]
    events += [
        {
            "kind": "progress",
            "progress": {
                "userId": f"u{i}",
                "courseId": "c1",
                "status": "in_progress",
                "overallScore": 50 + i,
                "startedAt": AT,
                "lastAccessedAt": AT,
                "totalTimeSpentMinutes": 12,
            },
        }
        for i in range(5)
    ]
    result = analytics.record_each(events, batch_size=7)
    assert (result.applied, result.unchanged, result.rejected) == (40, 0, 0)
    mine = snapshot(client)
    client.flushdb()
    analytics.record_many(events, batch_size=1000)
    assert snapshot(client) == mine
