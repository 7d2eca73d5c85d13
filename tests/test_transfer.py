"""Export then import: the copy answers every analytics call as the original does.

The operations are driven through the ``analytics`` fixture (sync and async); export pages are
kept small so that every section spans several pages, ties in the series included.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import training_analytics as ta
from training_analytics.transfer import ExportCursor

from . import test_properties as properties
from .factories import NOW, Factory, certification, course, snapshot
from .model import Model
from .stores import RAW_KEYS

COURSES = ("c1", "c2", "c3", "ghost")  # ghost: events but no catalog entry
START, END = "2025-04-01", "2025-06-20"


def _at(days_ago: float, minutes: int = 0) -> str:
    moment = NOW - timedelta(days=days_ago) + timedelta(minutes=minutes)
    return moment.isoformat().replace("+00:00", "Z")


def build_store(analytics: Any) -> None:
    """A varied store, written through the library as an application would."""
    analytics.create_training_course(course("c1", modules=3, order=2))
    analytics.create_training_course(
        course("c2", modules=2, category="technical", isPublished=False, order=1)
    )
    analytics.create_training_course(
        course(
            "c3",
            modules=1,
            category="legal",
            level="advanced",
            requiredForTiers=["gold"],
            certificateEnabled=False,
            order=3,
        )
    )
    analytics.update_training_course("c3", {"passingScore": 80})
    events: list[Any] = []
    for i in range(40):
        course_id = COURSES[i % 4]
        events.append(
            ta.EnrollmentEvent(user_id=f"u{i}", course_id=course_id, at=_at(i % 17, minutes=i))
        )
    # Five enrolments at the very same millisecond: a series page boundary falls among them.
    events += [ta.EnrollmentEvent(user_id=f"tie{i}", course_id="c1", at=_at(3)) for i in range(5)]
    events.append(ta.EnrollmentEvent(user_id="u0", course_id="c1", at=_at(1)))  # a replay
    for i in range(0, 40, 3):
        events.append(ta.CompletionEvent(user_id=f"u{i}", course_id=COURSES[i % 4], at=_at(0.5)))
    # Completing without an enrolment enrols at the completion's time.
    events.append(ta.CompletionEvent(user_id="walk-in", course_id="c2", at=_at(2)))
    for i in range(0, 40, 4):  # c1 learners
        events.append(ta.ModuleStartEvent(user_id=f"u{i}", course_id="c1", module_id="m1"))
        if i % 8 == 0:
            events.append(ta.ModuleCompletionEvent(user_id=f"u{i}", course_id="c1", module_id="m1"))
            events.append(ta.ModuleStartEvent(user_id=f"u{i}", course_id="c1", module_id="m2"))
    events.append(ta.ModuleCompletionEvent(user_id="u1", course_id="c2", module_id="m2"))
    analytics.record_many(events, batch_size=16)
    for i, user in enumerate(["u0", "u4", "u8", "u12"]):
        analytics.save_user_course_progress(
            {
                "userId": user,
                "courseId": "c1",
                "status": "completed" if i % 2 == 0 else "in_progress",
                "moduleProgress": [
                    {"moduleId": "m1", "status": "completed", "score": 90 - i, "attempts": 1}
                ],
                "overallScore": 70 + i * 7.5,
                "startedAt": _at(10 + i),
                "completedAt": _at(1) if i % 2 == 0 else None,
                "lastAccessedAt": _at(1),
                "totalTimeSpentMinutes": 30 * (i + 1),
                "certificateId": f"cert-{user}" if i == 0 else None,
            }
        )
    # Progress of a learner not enrolled: kept aside, not in the averages.
    analytics.save_user_course_progress(
        {"userId": "lurker", "courseId": "c1", "overallScore": 12, "startedAt": _at(4)}
    )
    far, soon, past = _at(-200), _at(-10), _at(5)
    analytics.issue_training_certification(certification("k-issued", expiresAt=far))
    analytics.issue_training_certification(certification("k-soon", expiresAt=soon))
    analytics.issue_training_certification(certification("k-overdue", expiresAt=past))
    analytics.issue_training_certification(
        certification("k-claimed", userId="u4", issuedAt=_at(20), expiresAt=far)
    )
    analytics.update_certification_status("k-claimed", "claimed", claimed_at=_at(18))
    analytics.issue_training_certification(
        certification("k-revoked", userId="u8", issuedAt=_at(20), expiresAt=far)
    )
    analytics.update_certification_status("k-revoked", "claimed", claimed_at=_at(19))
    analytics.update_certification_status("k-revoked", "revoked")
    analytics.issue_training_certification(certification("k-expired", expiresAt=far))
    analytics.update_certification_status("k-expired", "expired")
    analytics.issue_training_certification(
        certification("k-born-claimed", status="claimed", claimedAt=_at(12), issuedAt=_at(15))
    )


def answers(analytics: Any) -> dict[str, Any]:
    """Every analytics read of the store, as JSON-ready data."""

    def dump(value: Any) -> Any:
        if isinstance(value, list):
            return [dump(v) for v in value]
        if isinstance(value, dict):
            return {k: dump(v) for k, v in value.items()}
        if hasattr(value, "model_dump"):
            return value.model_dump(mode="json")
        return value

    result: dict[str, Any] = {
        "overview": analytics.get_training_overview_metrics(),
        "average completion": analytics.calculate_average_completion(),
        "courses": analytics.get_all_training_courses(),
        "published": analytics.get_published_training_courses(),
        "enhanced": analytics.get_all_enhanced_courses(),
        "enhanced draft": analytics.get_enhanced_courses_by_status("draft"),
        "credential stats": analytics.get_credential_stats(),
        "claims": analytics.get_credential_claim_analytics(),
        "certifications": analytics.get_all_training_certifications(),
        "enrollments per day": analytics.get_daily_enrollment_counts(START, END),
        "completions per day": analytics.get_daily_completion_counts(START, END),
        "enrollment series": analytics.get_enrollment_time_series(START, END),
        "completion series": analytics.get_completion_time_series(START, END),
    }
    for category in ("sales", "technical", "legal", "product"):
        result[f"category {category}"] = analytics.get_training_courses_by_category(category)
    learners = {f"u{i}" for i in range(40)} | {f"tie{i}" for i in range(5)} | {"walk-in", "lurker"}
    for course_id in COURSES:
        result[course_id] = {
            "detailed": analytics.get_course_detailed_analytics(course_id),
            "dropoff": analytics.get_course_module_dropoff_rates(course_id),
            "module m1": analytics.get_module_dropoff_rate(course_id, "m1"),
            "enrolled": sorted(analytics.get_course_enrollments(course_id)),
            "completed": sorted(analytics.get_course_completions(course_id)),
            "enrollment count": analytics.get_course_enrollment_count(course_id),
            "completion count": analytics.get_course_completion_count(course_id),
            "enrollments per day": analytics.get_daily_enrollment_counts(START, END, course_id),
            "completions per day": analytics.get_daily_completion_counts(START, END, course_id),
            "enrollment series": analytics.get_enrollment_time_series(START, END, course_id),
            "completion series": analytics.get_completion_time_series(START, END, course_id),
            "progress": {
                user: analytics.get_user_course_progress_data(user, course_id)
                for user in sorted(learners)
            },
        }
    for cert in result["certifications"]:
        result[f"certification {cert.id}"] = analytics.get_training_certification(cert.id)
    return {name: dump(value) for name, value in result.items()}


def export_all(analytics: Any, count: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    cursor: ExportCursor | None = None
    pages = 0
    while True:
        page = analytics.export_page(cursor, count=count)
        assert page.skipped == []
        records += page.records
        pages += 1
        assert pages < 10_000, "export does not end"
        if page.next is None:
            return records
        cursor = page.next


def _keys(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The keys under ``prefix`` (and under no other prefix when it is ""), named without it,
    caches aside. A derived counter at 0 reads like an absent one: both are left out (a figure
    that went up and back down leaves its field behind)."""
    found: dict[str, Any] = {}
    for key, (kind, stored) in state.items():
        name = key.removeprefix(prefix)
        if not key.startswith(prefix) or name.startswith(("cache:", "copy:")):
            continue
        value = stored
        if kind == "hash" and name.startswith("training:agg:"):
            value = {field: v for field, v in stored.items() if v != "0"}
            if not value:
                continue
        found[name] = (kind, value)
    return found


@pytest.mark.parametrize("count", [2, 500])
def test_export_then_import_answers_every_analytics_call_the_same(
    make_analytics: Factory, client: redis.Redis, count: int
) -> None:
    original = make_analytics()
    build_store(original)
    expected = answers(original)

    records = export_all(original, count)
    kinds = [r["kind"] for r in records]
    # Courses first, every enrolment before any completion, series in time order: on one
    # server globally; on a cluster course by course, each course oldest first (a course's
    # series lives on its own slot: docs/architecture.md, the reads table).
    assert kinds.index("enrollment") > max(i for i, k in enumerate(kinds) if k == "course")
    assert max(i for i, k in enumerate(kinds) if k == "enrollment") < kinds.index("completion")
    enrolments = [r for r in records if r["kind"] == "enrollment"]
    if original.keys.cluster:
        runs = [course_id for course_id, _ in itertools.groupby(r["courseId"] for r in enrolments)]
        assert len(runs) == len(set(runs)) > 1  # each course's enrolments together
        for course_id in runs:
            stamps = [r["at"] for r in enrolments if r["courseId"] == course_id]
            assert stamps == sorted(stamps)
    else:
        stamps = [r["at"] for r in enrolments]
        assert stamps == sorted(stamps)
    assert kinds.count("enrollment") == 46  # 45 learners in 4 courses + the walk-in
    assert kinds.count("course") == 3
    assert kinds.count("certification_issued") == 7

    # Into another prefix of the same server, in chunks, as the CLI imports a file.
    copy = make_analytics(prefix="copy:")
    for start in range(0, len(records), 7):
        result = copy.import_records(records[start : start + 7], batch_size=3)
        assert result.rejected == 0, result.results
    assert answers(copy) == expected

    # Beyond the reads: every key, base and derived, is the same (caches aside).
    state = snapshot(client)
    assert _keys(state, "copy:") == _keys(state, "")

    # Importing the same file again changes nothing, and says so: an export holds each
    # learner's last saved progress, which the store holds byte for byte.
    again = copy.import_records(records)
    assert kinds.count("progress") == 5
    assert (again.applied, again.unchanged, again.rejected) == (0, len(records), 0)
    assert snapshot(client) == state


def test_export_of_an_empty_store_is_empty(analytics: Any) -> None:
    assert export_all(analytics, 10) == []


def test_import_records_reports_courses_and_events_in_order(analytics: Any) -> None:
    records: list[Any] = [
        {"kind": "course", "course": course("c1", modules=2)},
        {"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": _at(1)},
        {"kind": "course", "course": {"id": "bad:id", "title": {"en": "x"}, "category": "sales"}},
        {"kind": "course", "course": course("c2", category="cooking")},
        {"kind": "course"},
        {"kind": "course", "course": course("c1", modules=2)},  # the same again
        {"kind": "course", "course": course("c1", modules=3)},  # replaced
        {"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": _at(1)},
        {"kind": "nonsense"},
    ]
    result = analytics.import_records(records, batch_size=2)
    assert [(r.index, r.status, r.error) for r in result.results] == [
        (0, "applied", None),
        (1, "applied", None),
        (2, "rejected", "InvalidIdError"),
        (3, "rejected", "InvalidInputError"),
        (4, "rejected", "InvalidInputError"),
        (5, "unchanged", None),
        (6, "applied", None),
        (7, "unchanged", None),
        (8, "rejected", "InvalidInputError"),
    ]
    assert (result.applied, result.unchanged, result.rejected) == (3, 2, 4)
    stored = analytics.get_training_course("c1")
    assert stored is not None and [m.id for m in stored.modules] == ["m1", "m2", "m3"]
    assert analytics.get_training_course("c2") is None


def test_put_training_course_keeps_or_replaces(analytics: Any) -> None:
    assert analytics.put_training_course(course("c1", category="sales")) is True
    first = analytics.get_training_course("c1")
    assert analytics.put_training_course(course("c1", category="sales")) is False
    assert analytics.put_training_course(course("c1", category="legal", isPublished=False))
    moved = analytics.get_training_course("c1")
    assert moved.category == "legal" and moved.created_at == first.created_at
    assert [c.id for c in analytics.get_training_courses_by_category("sales")] == []
    assert [c.id for c in analytics.get_training_courses_by_category("legal")] == ["c1"]
    assert analytics.get_published_training_courses() == []
    stamped = course("c1", category="legal", isPublished=False, updatedAt="2020-01-01T00:00:00Z")
    assert analytics.put_training_course(stamped) is True
    # Stored normalised, as every timestamp (milliseconds, Z).
    assert analytics.get_training_course("c1").updated_at == "2020-01-01T00:00:00.000Z"


def test_export_pages_resume_from_a_serialised_cursor(analytics: Any) -> None:
    """A cursor survives JSON (the HTTP service may hand it to a client)."""
    for i in range(9):
        analytics.record_enrollment(f"u{i}", "c1", at=datetime(2025, 6, 1, tzinfo=UTC))
    seen: list[str] = []
    cursor = None
    while True:
        page = analytics.export_page(cursor, count=4)
        seen += [r["userId"] for r in page.records]
        if page.next is None:
            break
        cursor = ExportCursor.model_validate_json(page.next.model_dump_json())
    assert sorted(seen) == [f"u{i}" for i in range(9)]
    assert len(seen) == 9


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stream=st.lists(properties.events, max_size=40),
    batch_size=st.integers(min_value=1, max_value=15),
    page=st.integers(min_value=1, max_value=7),
)
def test_random_streams_round_trip(
    make_analytics: Factory,
    client: redis.Redis,
    stream: list[tuple[Any, ...]],
    batch_size: int,
    page: int,
) -> None:
    """record_each reports what the plain-Python model expects of each event; export then
    import of the result rebuilds every key (caches aside)."""
    client.flushdb()
    original = make_analytics()
    properties._setup(original)
    model = Model(modules=properties.COURSES)
    expected = [properties._apply_model(model, event) for event in stream]
    result = original.record_each([properties._as_event(e) for e in stream], batch_size=batch_size)
    assert [(o.status, o.error) for o in result.results] == [
        ("rejected", outcome.__name__)
        if isinstance(outcome, type)
        else ("applied" if outcome else "unchanged", None)
        for outcome in expected
    ]

    records = export_all(original, page)
    copy = make_analytics(prefix="copy:")
    imported = copy.import_records(records, batch_size=batch_size)
    assert imported.rejected == 0, imported.results
    state = snapshot(client)
    assert _keys(state, "copy:") == _keys(state, "")


def test_a_course_with_text_that_is_not_unicode_is_refused(analytics: Any) -> None:
    bad = course("c1")
    bad["title"] = {"en": "\ud800"}
    result = analytics.import_records(
        [{"kind": "course", "course": bad}, {"kind": "course", "course": course("c2")}]
    )
    assert [(r.status, r.error) for r in result.results] == [
        ("rejected", "InvalidInputError"),
        ("applied", None),
    ]
    assert [c.id for c in analytics.get_all_training_courses()] == ["c2"]


def test_a_file_of_status_changes_imported_twice_writes_nothing_the_second_time(
    analytics: Any, client: redis.Redis
) -> None:
    records: list[Any] = [
        {"kind": "certification_issued", "certification": certification("k1")},
        {"kind": "certification_status", "certId": "k1", "newStatus": "claimed", "at": _at(1)},
        {"kind": "certification_status", "certId": "k1", "newStatus": "revoked", "at": _at(0)},
    ]
    first = analytics.import_records(records)
    assert (first.applied, first.rejected) == (3, 0)
    state = snapshot(client)
    second = analytics.import_records(records)
    # The certificate has moved on since its issue and its claim, but both are what the store
    # holds: replays, not conflicts.
    assert [(r.status, r.error) for r in second.results] == [("unchanged", None)] * 3
    assert snapshot(client) == state


@RAW_KEYS
def test_export_skips_and_names_what_it_cannot_address(analytics: Any, client: redis.Redis) -> None:
    analytics.record_enrollment("u1", "c1", at=_at(1))
    # Written by other tooling: ids with ':' this library cannot put in a key, a listed
    # certificate whose record is gone.
    client.zadd("training:enrollment:timeseries", {"1718000000000:u9:odd:course": 1718000000000})
    client.sadd("training:module:enrolled:odd:course:m1", "u9")
    client.sadd("training:certifications:all", "gone")
    records, skipped = [], []
    cursor = None
    while True:
        page = analytics.export_page(cursor, count=3)
        records += page.records
        skipped += page.skipped
        if page.next is None:
            break
        cursor = page.next
    assert [r["userId"] for r in records] == ["u1"]
    assert skipped == [
        "training:enrollment:timeseries member '1718000000000:u9:odd:course': "
        "not a learner and a course",
        "training:module:enrolled:odd:course:m1: not a course and a module this library can "
        "address",
        "training:certification:gone: listed but absent",
    ]


@pytest.mark.parametrize(
    "cursor",
    [
        ExportCursor(section="module_starts", keys=["other:training:module:enrolled:c1:m1"]),
        ExportCursor(section="module_starts", keys=["training:enrollments:c1"]),
        ExportCursor(section="progress", scan="1 MATCH *"),
        ExportCursor(section="enrollments", scan="nan"),
        ExportCursor(section="enrollments", scan="12", skip=-1),
        ExportCursor(section="certifications", member_scan="x"),
    ],
)
def test_a_forged_export_cursor_is_refused(analytics: Any, cursor: ExportCursor) -> None:
    """A cursor may come back from a client: it reads nothing outside this export."""
    with pytest.raises(ta.InvalidInputError):
        analytics.export_page(cursor)
