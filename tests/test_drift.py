"""Writes that bypass this library after a reindex: reads notice them instead of answering wrong.

The older system may keep writing base keys after the store was reindexed (tests/seed_writer.py
is a model of its writes). Reads compare each set they use with the size this library recorded
for it, so every analytic either answers what a fresh reindex answers or raises StaleIndexError.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
import redis

import training_analytics as ta
from training_analytics._context import Context
from training_analytics._exec import run
from training_analytics._index import ensure_fresh, require_index

from . import seed_writer
from .factories import NOW, course

pytestmark = pytest.mark.single_server(
    reason="drift: base keys the older system writes behind this library's back, in its own "
    "single-server layout, checked against the sizes recorded there (seed_writer.py writes them)"
)

START = datetime(2025, 6, 1, 9, tzinfo=UTC)
DAYS = ("2025-06-01", "2025-06-15")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _progress(user: str, course_id: str, score: float, hours: int | None) -> dict[str, Any]:
    done = hours is not None
    return {
        "userId": user,
        "courseId": course_id,
        "status": "completed" if done else "in_progress",
        "moduleProgress": [{"moduleId": "m1", "status": "completed", "score": score}],
        "overallScore": score,
        "startedAt": _iso(START),
        "completedAt": _iso(START + timedelta(hours=hours)) if hours is not None else None,
        "lastAccessedAt": _iso(START),
        "totalTimeSpentMinutes": 30,
    }


def _certificate(cert_id: str, user: str, issued: datetime) -> dict[str, Any]:
    return {
        "id": cert_id,
        "userId": user,
        "courseId": "c1",
        "courseName": {"en": "Course c1"},
        "userName": user,
        "userEmail": f"{user}@example.com",
        "status": "issued",
        "issuedAt": _iso(issued),
        "expiresAt": _iso(issued + timedelta(days=40)),
        "verificationCode": f"VC-{cert_id}",
        "score": 90,
    }


def _library_writes(analytics: Any) -> None:
    for course_id in ("c1", "c2"):
        analytics.create_training_course(course(course_id))
    for n in range(12):
        user, course_id = f"u{n}", "c1" if n % 3 else "c2"
        at = START + timedelta(hours=n)
        analytics.record_enrollment(user, course_id, at=at)
        analytics.record_module_start(user, course_id, "m1")
        analytics.save_user_course_progress(_progress(user, course_id, 60 + n, n + 2))
        if n % 2:
            analytics.record_module_completion(user, course_id, "m1")
            analytics.record_completion(user, course_id, at=at + timedelta(hours=n + 2))
    for n in range(6):
        analytics.issue_training_certification(_certificate(f"cert{n}", f"u{n}", START))
    analytics.update_certification_status("cert0", "claimed", claimed_at=_iso(START))
    analytics.update_certification_status("cert1", "revoked")


def _seed_writes(client: redis.Redis) -> None:
    """What the older system records meanwhile: new learners with progress and completions, a
    completion without enrolment, new certificates, claims and revocations."""
    for n in range(12, 20):
        user, at = f"u{n}", START + timedelta(days=2, hours=n)
        seed_writer.record_enrollment(client, user, "c1", at)
        seed_writer.record_module(client, user, "c1", "m1", completed=False)
        seed_writer.save_progress(client, _progress(user, "c1", 95, 5 if n % 2 else None))
        if n % 2:
            seed_writer.record_module(client, user, "c1", "m1", completed=True)
            seed_writer.record_completion(client, user, "c1", at + timedelta(hours=5))
    seed_writer.record_completion(client, "walk-in", "c2", START + timedelta(days=3))
    for n in range(6, 10):
        seed_writer.issue_certification(client, _certificate(f"cert{n}", f"u{n}", START))
        seed_writer.update_certification_status(client, f"cert{n}", "claimed", _iso(START))
    seed_writer.update_certification_status(client, "cert2", "claimed", _iso(START))
    seed_writer.update_certification_status(client, "cert3", "revoked")


def _reads(analytics: Any) -> dict[str, Callable[[], Any]]:
    reads: dict[str, Callable[[], Any]] = {
        "overview": analytics.get_training_overview_metrics,
        "average completion": analytics.calculate_average_completion,
        "claim analytics": analytics.get_credential_claim_analytics,
        "credential stats": analytics.get_credential_stats,
    }
    series = (
        "daily_enrollment_counts",
        "daily_completion_counts",
        "enrollment_time_series",
        "completion_time_series",
    )
    for name in series:
        reads[name] = partial(getattr(analytics, f"get_{name}"), *DAYS)
    for course_id in ("c1", "c2"):
        reads[f"detailed {course_id}"] = partial(analytics.get_course_detailed_analytics, course_id)
        reads[f"dropoff {course_id}"] = partial(
            analytics.get_course_module_dropoff_rates, course_id
        )
        reads[f"module dropoff {course_id}"] = partial(
            analytics.get_module_dropoff_rate, course_id, "m1"
        )
        for name in series:
            reads[f"{name} {course_id}"] = partial(
                getattr(analytics, f"get_{name}"), *DAYS, course_id=course_id
            )
    return reads


def _answers(analytics: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for name, read in _reads(analytics).items():
        try:
            answers[name] = read()
        except ta.StaleIndexError as exc:
            assert "reindex" in str(exc)
            answers[name] = exc
    return answers


def test_reads_after_writes_that_bypass_the_library_are_right_or_refused(
    analytics: Any, client: redis.Redis
) -> None:
    _library_writes(analytics)
    analytics.reindex()
    clean = _answers(analytics)
    assert not [n for n, a in clean.items() if isinstance(a, Exception)]

    _seed_writes(client)
    drifted = _answers(analytics)
    analytics.reindex()
    fresh = _answers(analytics)

    assert not [n for n, a in fresh.items() if isinstance(a, Exception)]
    wrong = {
        name: (answer, fresh[name])
        for name, answer in drifted.items()
        if not isinstance(answer, Exception) and answer != fresh[name]
    }
    assert wrong == {}
    refused = sorted(n for n, a in drifted.items() if isinstance(a, Exception))
    # Every read built on derived keys of a drifted course or of the certificates refuses.
    assert refused == sorted(
        [
            "claim analytics",
            "credential stats",
            "detailed c1",
            "detailed c2",
            "daily_enrollment_counts c1",
            "daily_completion_counts c1",
            "enrollment_time_series c1",
            "completion_time_series c1",
            "daily_completion_counts c2",
            "completion_time_series c2",
        ]
    )
    # ... and the reads that use base keys only still answer, as a reindex would.
    assert drifted["overview"] == fresh["overview"]


def test_a_store_indexed_before_size_counters_asks_for_a_reindex(
    analytics: Any, client: redis.Redis
) -> None:
    analytics.record_enrollment("u1", "c1", at=NOW)
    analytics.issue_training_certification(_certificate("cert0", "u1", START))
    # What an index built by an earlier version of this library lacks.
    client.hdel("training:agg:course:c1", "set:enrollments")
    client.hdel("training:agg:credentials", "set:all", "set:issued")
    with pytest.raises(ta.StaleIndexError, match="enrollments holds 1, expected 0"):
        analytics.get_course_detailed_analytics("c1")
    with pytest.raises(ta.StaleIndexError, match="all holds 1, expected 0"):
        analytics.get_credential_stats()
    analytics.reindex()
    assert analytics.get_course_detailed_analytics("c1").enrollments == 1
    assert analytics.get_credential_stats().issued == 1


def test_stale_index_is_a_not_indexed_error() -> None:
    # Callers (and the CLI) that handle "run reindex" already handle drift.
    assert issubclass(ta.StaleIndexError, ta.NotIndexedError)


def test_a_difference_seen_between_two_reads_of_a_pipeline_is_confirmed_before_raising(
    analytics: Any, client: redis.Redis
) -> None:
    analytics.record_enrollment("u1", "c1", at=NOW)
    keys = analytics.keys
    stats, learners = keys.course_stats("c1"), keys.course_enrollments("c1")
    # As if a write of this library ran between the pipeline's SCARD (2) and HMGET (1): at one
    # moment the set and its recorded size agree, so this is no drift.
    run(ensure_fresh("course c1", stats, [("enrollments", learners, 2, "1")]), client)
    # Real drift: the set changed behind the library's back.
    client.sadd(learners, "intruder")
    with pytest.raises(ta.StaleIndexError, match="enrollments holds 2, expected 1"):
        run(ensure_fresh("course c1", stats, [("enrollments", learners, 2, "1")]), client)
    with pytest.raises(ta.StaleIndexError):
        analytics.get_course_detailed_analytics("c1")


def test_concurrent_writes_of_this_library_are_never_taken_for_drift(client: redis.Redis) -> None:
    analytics = ta.TrainingAnalytics(client, clock=lambda: NOW)
    analytics.create_training_course(course("c1"))
    stop = threading.Event()
    failures: list[BaseException] = []
    reads = [0]

    def write(worker: int) -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            user = f"w{worker}-{n}"
            analytics.record_completion(user, "c1", at=NOW)
            analytics.issue_training_certification(_certificate(f"x{worker}-{n}", user, START))
            if n % 2:
                analytics.update_certification_status(f"x{worker}-{n}", "revoked")

    def read() -> None:
        while not stop.is_set():
            try:
                analytics.get_course_detailed_analytics("c1")
                analytics.get_credential_claim_analytics()
                analytics.get_credential_stats()
                analytics.get_completion_time_series(*DAYS, course_id="c1")
                reads[0] += 4
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
                return

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == [] and reads[0] > 0


def test_a_first_write_landing_between_the_marker_check_and_the_base_key_check_is_no_error(
    client: redis.Redis,
) -> None:
    # A read found no marker; before it looked for base keys, this library's first write set
    # both. The base keys it now sees come with the marker: that is an indexed store, not one
    # another system wrote (CI once raised NotIndexedError here under concurrent writes).
    ctx = Context()
    ta.TrainingAnalytics(client, clock=lambda: NOW).record_enrollment("u1", "c1", at=NOW)
    run(require_index(ctx), client)
    run(require_index(ctx, "c1"), client)
    # The same base keys without the marker: the older system's data, never indexed.
    client.delete(ctx.keys.index_marker())
    with pytest.raises(ta.NotIndexedError):
        run(require_index(ctx), client)
