"""The pure xAPI layer: the data model's checks, the identifier rules and the mapping."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest

from training_analytics.keys import check_id
from training_analytics.types import (
    CertificationIssuedEvent,
    CompletionEvent,
    EnrollmentEvent,
    ModuleCompletionEvent,
    ModuleStartEvent,
    ProgressEvent,
)
from training_analytics.xapi import (
    InvalidStatementError,
    MappingRules,
    digest,
    parse_statements,
    prepare,
)
from training_analytics.xapi.ids import last_segment, percent_encode
from training_analytics.xapi.mapping import duration_minutes

from . import xapi_statements as x

STORED = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
UUIDS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(1, 40)]


def mapped(statement: dict[str, Any], rules: MappingRules | None = None) -> Any:
    [prepared] = prepare(parse_statements(json.dumps(statement)), rules or MappingRules(), STORED)
    return prepared


def test_open_edx_enrolment_completion_and_grading() -> None:
    learner = x.EDX_LEARNERS[0]
    enrol = mapped(x.edx_enrollment(UUIDS[0], learner, "2024-03-05T10:00:00.123456+00:00"))
    assert enrol.event == EnrollmentEvent(
        user_id=learner,
        course_id=x.EDX_COURSE_ID,
        at=datetime(2024, 3, 5, 10, 0, 0, 123456, tzinfo=UTC),
    )
    assert unquote(enrol.event.course_id) == x.EDX_COURSE_KEY
    passed = mapped(x.edx_course_passed(UUIDS[1], learner, "2024-03-09T08:00:00+00:00"))
    assert isinstance(passed.event, CompletionEvent) and passed.event.course_id == x.EDX_COURSE_ID
    graded = mapped(x.edx_problem_graded(UUIDS[2], learner, "2024-03-06T08:00:00+00:00"))
    assert graded.event is None and "evaluated" in graded.ignored
    unenrol = mapped(x.edx_unenrollment(UUIDS[3], learner, "2024-03-07T08:00:00+00:00"))
    assert unenrol.event is None and "unregistered is not supported" in unenrol.ignored


def test_open_edx_course_progress() -> None:
    progress = mapped(x.edx_course_progress(UUIDS[0], "u1", "2024-03-05T10:00:00Z", 40)).event
    assert isinstance(progress, ProgressEvent)
    assert progress.progress.course_id == x.EDX_COURSE_ID
    assert progress.progress.status == "in_progress" and progress.progress.module_progress == []


def test_cmi5_session() -> None:
    statements = x.cmi5_session("learner-7", UUIDS[:7])
    prepared = prepare(parse_statements(json.dumps(statements)), MappingRules(), STORED)
    events = [p.event for p in prepared]
    at = [datetime.fromisoformat(s["timestamp"]) for s in statements]
    assert events[0] == ModuleStartEvent(
        user_id="learner-7", course_id="safety-101", module_id="ppe-basics", at=at[0]
    )
    assert events[1] == ModuleStartEvent(
        user_id="learner-7", course_id="safety-101", module_id="ppe-basics", at=at[1]
    )
    progress = events[2]
    assert isinstance(progress, ProgressEvent)
    assert progress.progress.total_time_spent_minutes == 10
    assert progress.progress.module_progress[0].module_id == "ppe-basics"
    assert events[3] == ModuleCompletionEvent(
        user_id="learner-7", course_id="safety-101", module_id="ppe-basics", at=at[3]
    )
    assert events[4] is None and "passed" in (prepared[4].ignored or "")  # passed on an AU
    assert events[5] is None and "terminated" in (prepared[5].ignored or "")
    assert events[6] == CompletionEvent(user_id="learner-7", course_id="safety-101", at=at[6])
    assert [p.id for p in prepared] == UUIDS[:7]


def test_certificate_earned() -> None:
    event = mapped(x.certificate_earned(UUIDS[0], "ana", "CERT-2025:0042", "2025-03-05T10:00:00Z"))
    assert isinstance(event.event, CertificationIssuedEvent)
    record = event.event.certification
    assert (record.id, record.user_id, record.course_id) == (
        "CERT-2025%3A0042",
        "ana@example.org",
        "safety-101",
    )
    assert record.score == 90 and record.course_name == {"en": "Workplace safety"}
    assert record.user_email == "ana@example.org" and record.user_name == "Ana Pereira"
    assert record.issued_at == "2025-03-05T10:00:00.000Z"


def test_a_module_without_a_course_in_context_is_ignored() -> None:
    statement = x.cmi5_session("l", UUIDS[:7])[1]
    statement["context"]["contextActivities"]["grouping"] = [{"id": x.CMI5_PUBLISHER_AU}]
    assert "no course" in mapped(statement).ignored


def test_timestamp_missing_is_the_time_received_and_naive_is_utc() -> None:
    statement = x.edx_enrollment(UUIDS[0], "u", "2024-03-05T10:00:00")
    assert mapped(statement).event.at == datetime(2024, 3, 5, 10, tzinfo=UTC)
    del statement["timestamp"]
    assert mapped(statement).event.at == STORED


def test_ids_are_percent_encoded_reversibly() -> None:
    for raw in ("course-v1:edX+DemoX+Demo_Course", "a b{c}*?[x]\\", "50%:off", "é:ü"):
        encoded = percent_encode(raw)
        assert check_id(encoded) == encoded
        assert unquote(encoded) == raw
    # '%' is encoded too, so an id that looks encoded never merges with one that is.
    assert percent_encode("a%3Ab") != percent_encode("a:b")
    assert percent_encode("course-v1:X") == "course-v1%3AX"


@pytest.mark.parametrize(
    ("iri", "segment"),
    [
        ("https://h/course/abc", "abc"),
        ("https://h/course/abc/", "abc"),
        ("https://h/course/abc?x=1#top", "abc"),
        ("https://h", "h"),
        ("urn:cmi5:course:42", "cmi5:course:42"),
        ("tag:example.org,2025:course/7", "7"),
    ],
)
def test_last_segment(iri: str, segment: str) -> None:
    assert last_segment(iri) == segment


def test_learner_id_order_and_configured_rules() -> None:
    statement = x.edx_enrollment(UUIDS[0], "u", "2024-03-05T10:00:00Z")
    statement["actor"] = {"mbox": "mailto:ana:x@example.org"}
    assert mapped(statement).event.user_id == "ana%3Ax@example.org"
    statement["actor"] = {"mbox_sha1sum": "A" * 40}
    assert mapped(statement).event.user_id == "a" * 40
    statement["actor"] = {"openid": "https://id.example.org/ana"}
    assert mapped(statement).event.user_id == "https%3A//id.example.org/ana"
    statement["actor"] = {"account": {"homePage": "https://h", "name": "n1"}}
    only_mbox = MappingRules.of(learner_id=["mbox"])
    assert "identifiers" in mapped(statement, only_mbox).ignored
    rules = MappingRules.of(
        course_pattern=r"^https://lms\.example\.org/course/(?P<id>[^/]+)$", activity_id="iri"
    )
    statement["object"] = {"id": x.EDX_COURSE_IRI}  # no type: the pattern decides
    assert mapped(statement, rules).event.course_id == x.EDX_COURSE_ID
    assert mapped(statement).ignored is not None  # untyped, no pattern: not a course
    iri_rule = MappingRules.of(course_pattern=r"/course/", activity_id="iri")
    assert mapped(statement, iri_rule).event.course_id == percent_encode(x.EDX_COURSE_IRI)
    with pytest.raises(ValueError, match="not a regular expression"):
        MappingRules.of(course_pattern="(")


def test_group_actor_and_non_activity_objects_are_ignored() -> None:
    statement = x.edx_enrollment(UUIDS[0], "u", "2024-03-05T10:00:00Z")
    statement["actor"] = {"objectType": "Group", "member": [{"mbox": "mailto:a@b.c"}]}
    assert "group" in mapped(statement).ignored
    statement = x.edx_enrollment(UUIDS[0], "u", "2024-03-05T10:00:00Z")
    statement["object"] = {"objectType": "StatementRef", "id": UUIDS[5]}
    assert "not an activity" in mapped(statement).ignored


def _invalid(statement: Any) -> str:
    with pytest.raises(InvalidStatementError) as caught:
        parse_statements(json.dumps(statement))
    return str(caught.value)


def test_invalid_statements_are_refused_with_their_place() -> None:
    good = x.edx_enrollment(UUIDS[0], "u", "2024-03-05T10:00:00Z")
    bad_iri = json.loads(json.dumps(good))
    bad_iri["verb"]["id"] = "registered"
    assert "verb.id" in _invalid(bad_iri)
    no_actor = {k: v for k, v in good.items() if k != "actor"}
    assert "actor" in _invalid([good, no_actor]) and "statement 1" in _invalid([good, no_actor])
    two_ids = json.loads(json.dumps(good))
    two_ids["actor"]["mbox"] = "mailto:a@b.c"
    assert "exactly one identifier" in _invalid(two_ids)
    for field, value in (
        ("version", "3.0"),
        ("timestamp", "yesterday"),
        ("id", "not-a-uuid"),
        ("unknownProperty", 1),
        ("result", {"score": {"raw": 5, "min": 0, "max": 4}}),
        ("result", {"score": {"scaled": 1.5}}),
        ("result", {"duration": "10 minutes"}),
    ):
        assert _invalid({**good, field: value})
    with pytest.raises(InvalidStatementError, match="twice"):
        prepare(parse_statements(json.dumps([good, good])), MappingRules(), STORED)


def test_digest_ignores_what_an_lrs_sets_and_nothing_else() -> None:
    good = x.edx_enrollment(UUIDS[0], "u", "2024-03-05T10:00:00Z")
    [a, b, c] = parse_statements(
        json.dumps(
            [
                good,
                {**good, "stored": "2025-01-01T00:00:00Z", "version": "1.0.0"},
                {**good, "timestamp": "2024-03-05T10:00:01Z"},
            ]
        )
    )
    assert digest(a) == digest(b) != digest(c)
    assert re.fullmatch(r"[0-9a-f]{64}", digest(a))


def test_statements_without_an_id_get_one() -> None:
    statement = x.edx_enrollment(UUIDS[0], "u", "2024-03-05T10:00:00Z")
    del statement["id"]
    first, second = (mapped(statement).id for _ in range(2))
    assert first != second and len(first) == 36


def test_duration_minutes() -> None:
    assert duration_minutes("PT1H30M") == 90
    assert duration_minutes("PT90S") == 1.5
    assert duration_minutes("P1DT1M") == 1441
    assert duration_minutes("P1W") == 7 * 24 * 60
    assert duration_minutes(None) is None


def test_groups_substatements_and_single_context_activities() -> None:
    good = x.edx_enrollment(UUIDS[0], "u", "2024-03-05T10:00:00Z")
    member_with_two = {"mbox": "mailto:a@b.c", "openid": "https://id.example.org/a"}
    assert "exactly one identifier" in _invalid(
        {**good, "actor": {"objectType": "Group", "member": [member_with_two]}}
    )
    assert "members" in _invalid({**good, "actor": {"objectType": "Group"}})
    assert "only a group" in _invalid({**good, "actor": {"mbox": "mailto:a@b.c", "member": []}})
    sub = {
        "objectType": "SubStatement",
        "actor": {"mbox": "mailto:a@b.c"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": "https://lms.example.org/course/c1"},
    }
    assert "not an activity" in mapped({**good, "object": sub}).ignored
    assert "actor" in _invalid({**good, "object": {**sub, "actor": {}}})
    assert "verb.id" in _invalid({**good, "object": {**sub, "verb": {"id": "nope"}}})
    # xAPI 1.0.0 allowed one activity where 1.0.3 has a list.
    statement = x.cmi5_session("l", UUIDS[:7])[1]
    statement["context"]["contextActivities"]["grouping"] = statement["context"][
        "contextActivities"
    ]["grouping"][1]
    assert mapped(statement).event.course_id == "safety-101"


def test_statement_ids_are_case_insensitive() -> None:
    good = x.edx_enrollment(UUIDS[0].upper().replace("-4000-", "-4ABC-"), "u", "2024-03-05T10:00")
    [prepared] = prepare(parse_statements(json.dumps(good)), MappingRules(), STORED)
    assert prepared.id == good["id"].lower()
    twice = [good, {**good, "id": good["id"].lower()}]
    with pytest.raises(InvalidStatementError, match="twice"):
        prepare(parse_statements(json.dumps(twice)), MappingRules(), STORED)
