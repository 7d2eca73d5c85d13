"""Random event streams, replayed into the library and into a plain-Python model.

Streams mix every event kind, with duplicates and times out of order, sent one call at a time
or through ``record_many`` in random batch sizes, through the sync and the asyncio facade. After
each stream every analytics function must equal the model's answer, the invariants of DESIGN.md
section 4 must hold, and rebuilding the derived keys from the base keys must change nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import training_analytics as ta

from .factories import NOW
from .model import Certificate, Model, certificate_record

USERS = ["u0", "u1", "u2", "u3"]
COURSES = {"c0": ["m0", "m1", "m2"], "c1": ["m0", "m1"]}
CERTS = ["k0", "k1", "k2"]
FIRST_DAY = datetime(2025, 5, 20, tzinfo=UTC)
DAYS = [(FIRST_DAY + timedelta(days=i)).date().isoformat() for i in range(27)]

users = st.sampled_from(USERS)
courses = st.sampled_from(sorted(COURSES))
moments = st.integers(min_value=0, max_value=26 * 24 * 4).map(
    lambda q: FIRST_DAY + timedelta(minutes=15 * q)
)
scores = st.one_of(
    st.just(0), st.integers(min_value=1, max_value=100), st.sampled_from([55.5, 99.5])
)


@st.composite
def module_events(draw: st.DrawFn) -> tuple[Any, ...]:
    course = draw(courses)
    return (
        draw(st.sampled_from(["module_start", "module_complete"])),
        draw(users),
        course,
        draw(st.sampled_from(COURSES[course])),
    )


@st.composite
def progress_events(draw: st.DrawFn) -> tuple[Any, ...]:
    started = draw(moments)
    done = draw(
        st.one_of(
            st.none(),
            st.integers(min_value=0, max_value=24 * 20).map(
                lambda h: started + timedelta(hours=h, minutes=7)
            ),
        )
    )
    return ("progress", draw(users), draw(courses), draw(scores), started, done)


@st.composite
def issue_events(draw: st.DrawFn) -> tuple[Any, ...]:
    issued = NOW - timedelta(
        days=draw(st.integers(min_value=1, max_value=60)), hours=draw(st.integers(0, 23))
    )
    lifetime = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=120)))
    expires = issued + timedelta(days=lifetime) if lifetime else None
    claimed = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=100)))
    claim = issued + timedelta(hours=claimed) if claimed is not None else None
    if claim is not None and expires is not None and claim >= expires:
        claim = None
    cert = Certificate(
        user=draw(users),
        course=draw(courses),
        issued=issued,
        expires=expires,
        status="claimed" if claim else "issued",
        claimed=claim,
        score=draw(st.integers(50, 100)),
    )
    return ("issue", draw(st.sampled_from(CERTS)), cert)


@st.composite
def status_events(draw: st.DrawFn) -> tuple[Any, ...]:
    claim = NOW - timedelta(hours=draw(st.integers(min_value=0, max_value=24 * 70)))
    return (
        "status",
        draw(st.sampled_from([*CERTS, "ghost"])),
        draw(st.sampled_from(["claimed", "expired", "revoked", "issued"])),
        claim,
    )


events = st.one_of(
    st.tuples(st.sampled_from(["enroll", "complete"]), users, courses, moments),
    module_events(),
    progress_events(),
    issue_events(),
    status_events(),
)


def _apply_model(model: Model, event: tuple[Any, ...]) -> Any:
    match event:
        case ("enroll", user, course, at):
            return model.enroll(user, course, at)
        case ("complete", user, course, at):
            return model.complete(user, course, at)
        case ("module_start", user, course, module):
            return model.start_module(user, course, module)
        case ("module_complete", user, course, module):
            return model.complete_module(user, course, module)
        case ("progress", user, course, score, started, done):
            return model.save_progress(user, course, score, started, done)
        case ("issue", cert_id, cert):
            return model.issue(cert_id, replace(cert))
        case ("status", cert_id, status, claim):
            return model.change_status(cert_id, status, claim)
    raise AssertionError(event)


def _progress(
    user: str, course: str, score: float, started: datetime, done: datetime | None
) -> ta.EnhancedTrainingProgress:
    # Validated from a mapping: the timestamp fields take aware datetimes at run time, while
    # their declared type (what the constructor's signature shows) is the stored string.
    return ta.EnhancedTrainingProgress.model_validate(
        {
            "user_id": user,
            "course_id": course,
            "status": "completed" if done else "in_progress",
            "overall_score": score,
            "started_at": started,
            "completed_at": done,
            "last_accessed_at": done or started,
            "total_time_spent_minutes": 30,
        }
    )


def _as_event(event: tuple[Any, ...]) -> Any:
    match event:
        case ("enroll", user, course, at):
            return ta.EnrollmentEvent(user_id=user, course_id=course, at=at)
        case ("complete", user, course, at):
            return ta.CompletionEvent(user_id=user, course_id=course, at=at)
        case ("module_start", user, course, module):
            return ta.ModuleStartEvent(user_id=user, course_id=course, module_id=module)
        case ("module_complete", user, course, module):
            return ta.ModuleCompletionEvent(user_id=user, course_id=course, module_id=module)
        case ("progress", user, course, score, started, done):
            return ta.ProgressEvent(progress=_progress(user, course, score, started, done))
        case ("issue", cert_id, cert):
            fields = certificate_record(cert_id, cert)
            record = ta.TrainingCertificationRecord.model_validate(fields)
            return ta.CertificationIssuedEvent(certification=record)
        case ("status", cert_id, status, claim):
            return ta.CertificationStatusEvent(cert_id=cert_id, new_status=status, claimed_at=claim)
    raise AssertionError(event)


def _call(analytics: Any, event: tuple[Any, ...]) -> Any:
    match event:
        case ("enroll", user, course, at):
            return analytics.record_enrollment(user, course, at=at)
        case ("complete", user, course, at):
            return analytics.record_completion(user, course, at=at)
        case ("module_start", user, course, module):
            return analytics.record_module_start(user, course, module)
        case ("module_complete", user, course, module):
            return analytics.record_module_completion(user, course, module)
        case ("progress", user, course, score, started, done):
            return analytics.save_user_course_progress(
                _progress(user, course, score, started, done)
            )
        case ("issue", cert_id, cert):
            return analytics.issue_training_certification(certificate_record(cert_id, cert))
        case ("status", cert_id, status, claim):
            return analytics.update_certification_status(cert_id, status, claimed_at=claim)
    raise AssertionError(event)


def _setup(analytics: Any) -> None:
    for course_id, modules in COURSES.items():
        analytics.create_training_course(
            {
                "id": course_id,
                "title": {"en": course_id},
                "category": "technical",
                "isPublished": True,
                "modules": [{"id": m, "title": {"en": f"Module {m}"}} for m in modules],
            }
        )


def _derived(client: redis.Redis) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for key in client.scan_iter("training:agg:*"):
        if key == "training:agg:schema":
            continue  # the marker: set by the first write, or by reindex on an empty store
        kind = client.type(key)
        if kind == "hash":
            state[key] = {f: v for f, v in client.hgetall(key).items() if v != "0"}
        elif kind == "zset":
            state[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            state[key] = client.get(key)
    return {k: v for k, v in state.items() if v not in ({}, [])}


def check_invariants(client: redis.Redis) -> None:
    for course, modules in COURSES.items():
        assert client.smembers(f"training:completions:{course}") <= client.smembers(
            f"training:enrollments:{course}"
        )
        by_day = sum(int(v) for v in client.hvals(f"training:agg:course:{course}:enrollments"))
        assert by_day == client.scard(f"training:enrollments:{course}")
        for module in modules:
            assert client.smembers(
                f"training:module:completed:{course}:{module}"
            ) <= client.smembers(f"training:module:enrolled:{course}:{module}")
    total = sum(int(client.get(k) or 0) for k in client.scan_iter("training:enrollment:date:*"))
    assert total == sum(client.scard(f"training:enrollments:{c}") for c in COURSES)
    assert total == client.zcard("training:enrollment:timeseries")
    for cert_id in cast(set[str], client.smembers("training:certifications:all")):
        holders = [
            s
            for s in ta.keys.CERTIFICATION_STATUSES
            if client.sismember(f"training:certifications:status:{s}", cert_id)
        ]
        assert holders == [client.hget(f"training:certification:{cert_id}", "status")]


def apply_as_the_model_says(
    analytics: Any,
    model: Model,
    stream: list[tuple[Any, ...]],
    batch_size: int | None,
    streamed: bool = False,
) -> None:
    """Apply ``stream`` to the model and to the library (event by event, or through
    ``record_many`` in batches of ``batch_size``): every event's outcome must be the model's."""
    expected = [_apply_model(model, event) for event in stream]
    if batch_size is None:
        for event, outcome in zip(stream, expected, strict=True):
            if isinstance(outcome, type):
                with pytest.raises(outcome):
                    _call(analytics, event)
            else:
                assert _call(analytics, event) == outcome, event
    else:
        result = analytics.record_many(
            [_as_event(e) for e in stream], batch_size=batch_size, stream=streamed
        )
        refused = {r.index: r.error for r in result.rejected}
        assert refused == {i: o.__name__ for i, o in enumerate(expected) if isinstance(o, type)}
        assert result.applied == sum(1 for o in expected if o is True)
        assert result.unchanged == sum(1 for o in expected if o is False)


@pytest.mark.single_server(
    reason="checks the invariants on the single-server layout's raw keys; on a cluster, "
    "test_cluster_faults.py replays the same streams and compares them with one server"
)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stream=st.lists(events, max_size=40),
    batch_size=st.one_of(st.none(), st.integers(min_value=1, max_value=15)),
    streamed=st.booleans(),
)
def test_library_equals_model(
    analytics: Any,
    client: redis.Redis,
    stream: list[tuple[Any, ...]],
    batch_size: int | None,
    streamed: bool,
) -> None:
    client.flushdb()
    _setup(analytics)
    model = Model(modules=COURSES)
    apply_as_the_model_says(analytics, model, stream, batch_size, streamed)

    for course in COURSES:
        assert analytics.get_course_detailed_analytics(
            course
        ).model_dump() == model.course_analytics(course)
        for series, counts in (
            ("enrollment", model.enrolments_by_day),
            ("completion", model.completions_by_day),
        ):
            read = getattr(analytics, f"get_{series}_time_series")
            assert [p.count for p in read(DAYS[0], DAYS[-1], course_id=course)] == model.series(
                counts, DAYS, course
            )
    for series, counts in (
        ("enrollment", model.enrolments_by_day),
        ("completion", model.completions_by_day),
    ):
        read = getattr(analytics, f"get_daily_{series}_counts")
        assert [p.count for p in read(DAYS[0], DAYS[-1])] == model.series(counts, DAYS, None)
    assert analytics.get_credential_claim_analytics().model_dump() == model.claim_analytics(NOW)
    assert analytics.get_credential_stats().model_dump() == model.credential_stats(NOW)
    overview = analytics.get_training_overview_metrics()
    assert overview.total_enrollments == sum(len(v) for v in model.enrolled.values())
    assert overview.total_certifications == len(model.certificates)

    check_invariants(client)
    before = _derived(client)
    analytics.reindex()
    assert _derived(client) == before
