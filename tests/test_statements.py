"""xAPI statements into the store (``record_statements``), sync and async: events applied once
per statement id, conflicts refused whole, and the analytics equal to those of the same events
sent through ``record_many``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

import training_analytics as ta
from training_analytics._exec import run
from training_analytics.errors import StatementConflictError
from training_analytics.statements import record_statements
from training_analytics.types import (
    CertificationIssuedEvent,
    CompletionEvent,
    EnhancedTrainingProgress,
    EnrollmentEvent,
    ModuleCompletionEvent,
    ModuleProgress,
    ModuleStartEvent,
    ProgressEvent,
    TrainingCertificationRecord,
)
from training_analytics.xapi import MappingRules, parse_statements, prepare
from training_analytics.xapi.files import read_statements

from . import xapi_statements as x
from .factories import Factory, snapshot
from .stores import ONE_SERVER

STORED = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
UUIDS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(1, 60)]


def prepared(statements: list[dict[str, Any]]) -> Any:
    return prepare(parse_statements(json.dumps(statements)), MappingRules(), STORED)


def real_world() -> list[dict[str, Any]]:
    """Open edX enrolments, grading, progress and passes for three learners, two cmi5
    sessions, a certificate: the statements of the comparison below."""
    ids = iter(UUIDS)
    statements: list[dict[str, Any]] = []
    for n, learner in enumerate(x.EDX_LEARNERS):
        statements.append(x.edx_enrollment(next(ids), learner, f"2025-03-0{n + 1}T10:00:00Z"))
        statements.append(x.edx_problem_graded(next(ids), learner, f"2025-03-0{n + 2}T10:00:00Z"))
    statements.append(
        x.edx_course_progress(next(ids), x.EDX_LEARNERS[0], "2025-03-05T10:00:00Z", 50)
    )
    statements.append(x.edx_course_passed(next(ids), x.EDX_LEARNERS[0], "2025-03-06T10:00:00Z"))
    statements.append(x.edx_unenrollment(next(ids), x.EDX_LEARNERS[2], "2025-03-07T10:00:00Z"))
    statements += x.cmi5_session("learner-7", [next(ids) for _ in range(7)])
    statements += x.cmi5_session("learner-8", [next(ids) for _ in range(7)], day="2025-03-05")[:4]
    statements.append(x.certificate_earned(next(ids), "ana", "CERT-42", "2025-03-06T11:00:00Z"))
    return statements


def expected_events() -> list[Any]:
    """The same facts written by hand as this project's events."""
    course, cmi5 = x.EDX_COURSE_ID, "safety-101"
    events: list[Any] = []

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text)

    for n, learner in enumerate(x.EDX_LEARNERS):
        events.append(
            EnrollmentEvent(user_id=learner, course_id=course, at=at(f"2025-03-0{n + 1}T10:00:00Z"))
        )
    events.append(
        ProgressEvent(
            progress=EnhancedTrainingProgress(
                user_id=x.EDX_LEARNERS[0],
                course_id=course,
                status="in_progress",
                last_accessed_at="2025-03-05T10:00:00.000Z",
            ),
            at=at("2025-03-05T10:00:00Z"),
        )
    )
    events.append(
        CompletionEvent(user_id=x.EDX_LEARNERS[0], course_id=course, at=at("2025-03-06T10:00:00Z"))
    )
    for learner, day, complete in (
        ("learner-7", "2025-03-04", True),
        ("learner-8", "2025-03-05", False),
    ):
        module: dict[str, Any] = {
            "user_id": learner,
            "course_id": cmi5,
            "module_id": "ppe-basics",
        }
        events.append(ModuleStartEvent(**module, at=at(f"{day}T09:00:00Z")))
        events.append(ModuleStartEvent(**module, at=at(f"{day}T09:00:02.150Z")))
        events.append(
            ProgressEvent(
                progress=EnhancedTrainingProgress(
                    user_id=learner,
                    course_id=cmi5,
                    status="in_progress",
                    module_progress=[
                        ModuleProgress(
                            module_id="ppe-basics", status="in_progress", time_spent_minutes=10
                        )
                    ],
                    last_accessed_at=f"{day}T09:10:00.000Z",
                    total_time_spent_minutes=10,
                ),
                at=at(f"{day}T09:10:00Z"),
            )
        )
        events.append(ModuleCompletionEvent(**module, at=at(f"{day}T09:20:00Z")))
        if complete:
            events.append(
                CompletionEvent(user_id=learner, course_id=cmi5, at=at(f"{day}T09:21:00.500Z"))
            )
    events.append(
        CertificationIssuedEvent(
            certification=TrainingCertificationRecord(
                id="CERT-42",
                user_id="ana@example.org",
                course_id=cmi5,
                course_name={"en": "Workplace safety"},
                user_name="Ana Pereira",
                user_email="ana@example.org",
                issued_at="2025-03-06T11:00:00.000Z",
                score=90,
            ),
            at=at("2025-03-06T11:00:00Z"),
        )
    )
    return events


def without(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The keys under ``prefix``, the prefix removed, the statement ids left out."""
    return {
        key.removeprefix(prefix): value
        for key, value in state.items()
        if key.startswith(prefix) and ":training:xapi:" not in key
    }


def test_analytics_equal_those_of_the_same_events(
    make_analytics: Factory, client: redis.Redis
) -> None:
    by_xapi, by_events = make_analytics(prefix="x:"), make_analytics(prefix="e:")
    result = by_xapi.record_statements(prepared(real_world()))
    assert (result.new, result.duplicates, result.rejected, result.raced) == (21, 0, [], [])
    # graded x3, unregistered, the first session's AU passed and terminated (the second
    # stops at completed)
    assert result.ignored == 6
    expected = by_events.record_many(expected_events())
    assert expected.rejected == []
    assert result.applied + result.unchanged == len(expected_events())
    state = snapshot(client)
    assert without(state, "x:") == without(state, "e:")
    for course in (x.EDX_COURSE_ID, "safety-101"):
        assert by_xapi.get_course_detailed_analytics(
            course
        ) == by_events.get_course_detailed_analytics(course)
    assert by_xapi.get_course_enrollment_count(x.EDX_COURSE_ID) == 3
    assert by_xapi.get_course_completion_count("safety-101") == 1
    assert by_xapi.get_credential_claim_analytics() == by_events.get_credential_claim_analytics()


def test_a_statement_sent_again_counts_once(analytics: Any, client: redis.Redis) -> None:
    statements = prepared(real_world()[:6])
    first = analytics.record_statements(statements)
    assert (first.new, first.applied, first.ignored) == (6, 3, 3)
    before = snapshot(client)
    again = analytics.record_statements(statements)
    assert (again.new, again.duplicates, again.applied, again.ignored) == (0, 6, 0, 0)
    assert snapshot(client) == before
    assert analytics.get_course_enrollment_count(x.EDX_COURSE_ID) == 3


def test_ids_are_kept_for_the_retention(analytics: Any, client: redis.Redis) -> None:
    analytics.record_statements(prepared(real_world()[:2]), retention_seconds=3600)
    key = analytics.keys.xapi_statement(UUIDS[1])  # an ignored statement's id is kept too
    assert 3590 <= client.ttl(key) <= 3600
    assert len(client.get(key) or "") == 64
    with pytest.raises(ValueError, match="retention"):
        analytics.record_statements(prepared(real_world()[:1]), retention_seconds=0)


def test_a_different_statement_under_a_held_id_is_refused_whole(
    analytics: Any, client: redis.Redis
) -> None:
    analytics.record_statements(prepared(real_world()[:1]))
    before = snapshot(client)
    changed = x.edx_enrollment(UUIDS[0], x.EDX_LEARNERS[1], "2025-03-01T10:00:00Z")
    fresh = x.edx_enrollment(UUIDS[40], "someone-new", "2025-03-01T10:00:00Z")
    with pytest.raises(StatementConflictError, match=UUIDS[0]):
        analytics.record_statements(prepared([fresh, changed]))
    assert snapshot(client) == before


def test_a_store_refusal_is_reported_by_statement(analytics: Any) -> None:
    earned = x.certificate_earned(UUIDS[0], "ana", "CERT-1", "2025-03-06T11:00:00Z")
    analytics.record_statements(prepared([earned]))
    other = x.certificate_earned(UUIDS[1], "bob", "CERT-1", "2025-03-07T11:00:00Z")
    enrol = x.edx_enrollment(UUIDS[2], "u", "2025-03-01T10:00:00Z")
    result = analytics.record_statements(prepared([enrol, other]))
    assert result.applied == 1
    [refused] = result.rejected
    assert (refused.index, refused.error) == (1, "CertificationExistsError")


def test_no_statements(analytics: Any, client: redis.Redis) -> None:
    assert analytics.record_statements([]).new == 0
    assert snapshot(client) == {}


def test_import_statements_from_json_lines_and_arrays(analytics: Any, tmp_path: Any) -> None:
    statements = real_world()
    lines = [json.dumps(s) for s in statements[:5]]
    lines.insert(2, "{not json")
    lines.append(json.dumps({**statements[0], "actor": {}}))  # invalid: no identifier
    lines.append(json.dumps(statements[1]))  # repeated in the file: counts once
    lines.append(json.dumps({**statements[3], "timestamp": "2025-04-01T00:00:00Z"}))  # conflict
    # Text JSON escapes allow but no store can hold (a lone surrogate), in a name and in an
    # extension's value.
    surrogate = x.edx_enrollment(UUIDS[50], "u-x", "2025-03-01T10:00:00Z")
    surrogate["actor"]["account"]["name"] = "u\ud800"
    lines.append(json.dumps(surrogate))
    surrogate = x.edx_enrollment(UUIDS[51], "u-y", "2025-03-01T10:00:00Z")
    surrogate["context"]["extensions"]["https://example.org/note"] = "\ud800"
    lines.append(json.dumps(surrogate))
    path = tmp_path / "statements.jsonl"
    path.write_text("\n".join(lines) + "\n\n")
    with path.open("rb") as stream:
        summary = analytics.import_statements(read_statements(stream), batch_size=2)
    assert (summary.read, summary.new, summary.duplicates) == (11, 5, 1)
    assert (summary.applied, summary.ignored) == (3, 2)
    assert [(r.position, r.error) for r in summary.rejected] == [
        (3, "InvalidStatementError"),
        (7, "InvalidStatementError"),
        (9, "StatementConflictError"),
        (10, "InvalidStatementError"),
        (11, "InvalidStatementError"),
    ]
    assert analytics.get_course_enrollment_count(x.EDX_COURSE_ID) == 3
    array = tmp_path / "statements.json"
    array.write_text(json.dumps(statements))
    with array.open("rb") as stream:
        again = analytics.import_statements(read_statements(stream))
    assert (again.read, again.new, again.duplicates, again.rejected) == (21, 16, 5, [])
    expected = mapped_count(statements)
    assert again.applied + again.unchanged + summary.applied == expected


def mapped_count(statements: list[dict[str, Any]]) -> int:
    return sum(1 for p in prepared(statements) if p.event is not None)


def _interleaved(op: Any, between: Any) -> Any:
    """``op`` with ``between()`` run after its first round trip (another writer's moment)."""
    request = next(op)
    replies = yield request
    between()
    while True:
        try:
            request = op.send(replies)
        except StopIteration as done:
            return done.value
        replies = yield request


@ONE_SERVER
def test_an_id_taken_meanwhile_by_another_statement_is_reported(client: redis.Redis) -> None:
    lib = ta.TrainingAnalytics(client)
    statements = prepared(real_world()[:3])
    key = lib.keys.xapi_statement(UUIDS[2])

    def other_writer() -> None:
        client.set(key, "f" * 64)

    op = record_statements(lib.context, statements)
    result = run(_interleaved(op, other_writer), client)
    assert result.raced == [UUIDS[2]]
    assert client.get(key) == "f" * 64  # the other statement keeps its id
    # This batch's events were applied (the window docs/xapi.md describes).
    assert result.applied == 2 and lib.get_course_enrollment_count(x.EDX_COURSE_ID) == 2
