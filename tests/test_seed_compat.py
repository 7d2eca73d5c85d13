"""Data the older system wrote, in its own formats, read by this library; and the reverse."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import redis

import training_analytics as ta

from . import seed_oracle, seed_writer
from .factories import NOW, Factory, snapshot
from .stores import SEED_DATA

pytestmark = SEED_DATA

SALES = "1736935800000-aB3xQ9"
LEGAL = "1736935811111-Zz_9-k"
START = datetime(2025, 5, 1, 9, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _course(
    course_id: str, title: dict[str, str], modules: int, published: bool, order: int
) -> dict[str, Any]:
    return {
        "id": course_id,
        "title": title,
        "description": {"es": "Descripción", "en": "Description"},
        "category": "sales" if course_id == SALES else "legal",
        "level": "intermediate",
        "duration": 185,
        "modules": [
            {
                "id": f"{course_id}-m{i}",
                "title": {"es": f"Módulo {i}"} if i % 2 else {"en": f"Module {i}"},
                "lessons": [
                    {
                        "id": f"l{i}",
                        "title": {"es": "Clase"},
                        "type": "video" if i == 1 else "reading",
                        "videoUrl": "https://v.example/1",
                        "content": {"en": "<p>Hi</p>"},
                        "duration": 15,
                        "order": 1,
                    }
                ]
                if i < modules
                else [],
                "quiz": [
                    {
                        "id": "q1",
                        "question": {"en": "?"},
                        "options": [{"en": "a"}, {"en": "b"}],
                        "correctAnswer": 1,
                    }
                ],
                "passingScore": 80 if i == 2 else None,
                "order": i,
            }
            for i in range(1, modules + 1)
        ],
        "isPublished": published,
        "isRequired": True,
        "requiredForTiers": ["gold", "platinum"],
        "passingScore": 70,
        "certificateEnabled": course_id == SALES,
        "order": order,
        "createdAt": "2025-01-15T10:30:00.000Z",
        "createdBy": "admin-1",
        "updatedAt": "2025-01-16T08:00:00.000Z",
    }


@pytest.fixture
def seed_store(client: redis.Redis) -> redis.Redis:
    """A programme the older system recorded: its quirks included."""
    rng = random.Random(7)
    seed_writer.create_course(
        client, _course(SALES, {"en": "Selling Sovra", "es": "Vender Sovra"}, 4, True, 2)
    )
    seed_writer.create_course(client, _course(LEGAL, {"pt": "Jurídico"}, 2, False, 1))
    learners = [f"1736{n:09d}-u{n}" for n in range(40)]
    for n, user in enumerate(learners):
        course = SALES if n % 4 else LEGAL
        when = START + timedelta(hours=7 * n)
        seed_writer.record_enrollment(client, user, course, when)
        if n % 9 == 0:  # re-enrolment: the seed counted it again
            seed_writer.record_enrollment(client, user, course, when + timedelta(days=2))
        reached = rng.randint(0, 4 if course == SALES else 2)
        for m in range(1, reached + 1):
            seed_writer.record_module(client, user, course, f"{course}-m{m}", completed=False)
            if m < reached or rng.random() < 0.5:
                seed_writer.record_module(client, user, course, f"{course}-m{m}", completed=True)
        started = when + timedelta(minutes=30)
        done = reached == (4 if course == SALES else 2)
        completed_at = started + timedelta(hours=rng.randint(2, 90), minutes=rng.randint(0, 59))
        if n % 7 != 3:
            seed_writer.save_progress(
                client,
                {
                    "userId": user,
                    "courseId": course,
                    "status": "completed" if done else "in_progress",
                    "moduleProgress": [
                        {"moduleId": f"{course}-m1", "status": "completed", "score": 90}
                    ],
                    "overallScore": rng.choice([0, 55, 70, 85.5, 92, 100]),
                    "startedAt": _iso(started),
                    "completedAt": _iso(completed_at) if done else None,
                    "lastAccessedAt": _iso(completed_at),
                    "totalTimeSpentMinutes": rng.randint(10, 300),
                },
            )
        if done:
            seed_writer.record_completion(client, user, course, completed_at)
    # Progress of someone never enrolled, and a completion the seed recorded without enrolling.
    seed_writer.save_progress(
        client,
        {
            "userId": "ghost",
            "courseId": SALES,
            "status": "completed",
            "moduleProgress": [],
            "overallScore": 1,
            "startedAt": _iso(START),
            "completedAt": _iso(START + timedelta(hours=1)),
            "lastAccessedAt": _iso(START),
            "totalTimeSpentMinutes": 5,
        },
    )
    seed_writer.record_completion(client, "drive-by", LEGAL, START + timedelta(days=3))
    statuses = ["issued", "claimed", "claimed", "expired", "revoked", "issued", "claimed", "issued"]
    for n, status in enumerate(statuses):
        issued = NOW - timedelta(days=40 - 3 * n, hours=n)
        cert: dict[str, Any] = {
            "id": f"cert-{n}",
            "userId": learners[n + 1],
            "courseId": SALES,
            "courseName": {"en": "Selling Sovra", "es": "Vender Sovra"},
            "userName": f"Learner {n}",
            "userEmail": f"l{n}@partner.example",
            "status": "issued",
            "issuedAt": _iso(issued),
            "expiresAt": _iso(NOW + timedelta(days=5 * n - 6)) if n != 5 else None,
            "credentialUrl": None if n % 2 else "https://creds.example/x",
            "verificationCode": f"VC{n:04d}",
            "score": 70 + n,
        }
        seed_writer.issue_certification(client, cert)
        if status in {"claimed", "revoked"}:
            seed_writer.update_certification_status(
                client, cert["id"], "claimed", _iso(issued + timedelta(hours=5 + 11 * n))
            )
        if status in ("expired", "revoked"):
            seed_writer.update_certification_status(client, cert["id"], status)
    return client


def test_reads_of_base_keys_work_before_reindex(seed_store: redis.Redis, analytics: Any) -> None:
    assert analytics.get_course_enrollment_count(SALES) == 30
    assert len(analytics.get_course_enrollments(LEGAL)) == 10
    assert analytics.get_training_overview_metrics().model_dump() == seed_oracle.overview(
        seed_store
    )
    rates = analytics.get_course_module_dropoff_rates(SALES)
    assert [r.model_dump() for r in rates] == seed_oracle.course_detailed_analytics(
        seed_store, SALES
    )["dropoffRates"]
    assert [r.module_name for r in rates] == ["Módulo 1", "Module 2", "Módulo 3", "Module 4"]
    # Global series read the seed's own day counters, re-enrolments included.
    days = analytics.get_daily_enrollment_counts("2025-05-01", "2025-05-31")
    assert sum(p.count for p in days) == 40 + 5
    user = "1736000000001-u1"
    progress = analytics.get_user_course_progress_data(user, SALES)
    assert (
        progress is not None
        and progress.user_id == user
        and progress.module_progress[0].score == 90
    )
    certs = analytics.get_all_training_certifications()
    assert [c.id for c in certs] == [f"cert-{n}" for n in range(8)]
    assert certs[1].course_name == {"en": "Selling Sovra", "es": "Vender Sovra"}
    assert certs[1].credential_url is None and certs[0].credential_url == "https://creds.example/x"
    assert certs[5].expires_at is None
    courses = analytics.get_all_training_courses()
    assert [c.id for c in courses] == [LEGAL, SALES]  # by order
    assert courses[1].required_for_tiers == ["gold", "platinum"]
    assert courses[1].is_required is True and courses[0].is_published is False


def test_index_dependent_reads_and_writes_say_reindex(
    seed_store: redis.Redis, analytics: Any
) -> None:
    for call in (
        lambda: analytics.get_course_detailed_analytics(SALES),
        analytics.get_credential_claim_analytics,
        analytics.get_credential_stats,
        lambda: analytics.get_enrollment_time_series("2025-05-01", "2025-05-02", course_id=SALES),
    ):
        with pytest.raises(ta.NotIndexedError, match="reindex"):
            call()
    before = snapshot(seed_store)
    with pytest.raises(ta.NotIndexedError):
        analytics.record_enrollment("newbie", SALES)
    with pytest.raises(ta.NotIndexedError):
        analytics.record_many([ta.EnrollmentEvent(user_id="newbie", course_id=SALES)])
    assert snapshot(seed_store) == before


def test_after_reindex_every_read_matches_the_seed(seed_store: redis.Redis, analytics: Any) -> None:
    report = analytics.reindex()
    assert report.courses == 2 and report.certifications == 8
    for course_id in (SALES, LEGAL):
        ours = analytics.get_course_detailed_analytics(course_id).model_dump()
        assert ours == seed_oracle.course_detailed_analytics(seed_store, course_id)
    # The seed recorded a completion without an enrolment; it is counted as the seed counted it.
    assert "drive-by" in analytics.get_course_completions(LEGAL)
    assert "drive-by" not in analytics.get_course_enrollments(LEGAL)
    claims = analytics.get_credential_claim_analytics().model_dump()
    expected = seed_oracle.credential_claim_analytics(seed_store, NOW)
    # The seed counted expiring certificates whatever their status; a revoked or expired one is
    # not going to expire, so it is left out here (docs/compatibility.md).
    revoked_or_expired_soon = 2  # cert-3 (expired) and cert-4 (revoked)
    assert claims["expiringIn30Days"] == expected.pop("expiringIn30Days") - revoked_or_expired_soon
    assert {k: claims[k] for k in expected} == expected
    # pending = issued, unclaimed, not past expiry: cert-0 expired by time, cert-5 and cert-7 pend.
    assert claims["pending"] == 2
    stats = analytics.get_credential_stats()
    # cert-0 (issued) and cert-1 (claimed) are past expiry: they count as expired, with cert-3.
    assert (stats.issued, stats.claimed, stats.expired, stats.revoked) == (2, 2, 3, 1)
    per_course = analytics.get_enrollment_time_series("2025-05-01", "2025-05-31", course_id=SALES)
    assert sum(p.count for p in per_course) == 30  # each learner once


def test_writes_after_reindex_keep_figures_exact(seed_store: redis.Redis, analytics: Any) -> None:
    analytics.reindex()
    analytics.record_enrollment("late-1", SALES, at=NOW)
    analytics.save_user_course_progress(
        {
            "userId": "late-1",
            "courseId": SALES,
            "status": "completed",
            "overallScore": 99,
            "startedAt": "2025-06-01T00:00:00Z",
            "completedAt": "2025-06-03T00:00:00Z",
            "lastAccessedAt": "2025-06-03T00:00:00Z",
            "totalTimeSpentMinutes": 60,
            "moduleProgress": [],
        }
    )
    analytics.record_completion("late-1", SALES, at=NOW)
    analytics.update_certification_status("cert-7", "claimed", claimed_at=_iso(NOW))
    assert analytics.get_course_detailed_analytics(
        SALES
    ).model_dump() == seed_oracle.course_detailed_analytics(seed_store, SALES)
    live = (
        analytics.get_credential_claim_analytics(),
        analytics.get_course_detailed_analytics(SALES),
    )
    analytics.reindex()
    assert (
        analytics.get_credential_claim_analytics(),
        analytics.get_course_detailed_analytics(SALES),
    ) == live


def test_what_this_library_writes_is_in_the_seed_formats(
    make_analytics: Factory, client: redis.Redis
) -> None:
    analytics = make_analytics()
    course = _course(SALES, {"en": "Selling Sovra"}, 3, True, 1)
    course["modules"][0]["passingScore"] = None
    analytics.create_training_course(course)
    stored = cast(dict[str, str], client.hgetall(f"training:course:{SALES}"))
    assert stored["isPublished"] == "true" and stored["certificateEnabled"] == "true"
    assert stored["duration"] == "185" and stored["order"] == "1"
    assert stored["requiredForTiers"] == '["gold","platinum"]'
    assert '"passingScore"' not in stored["modules"].split('"lessons"')[0]  # undefined, not null
    assert client.zscore("training:courses:all", SALES) == 1
    assert client.smembers("training:courses:published") == {SALES}
    analytics.record_enrollment("u1", SALES, at=START)
    analytics.record_completion("u1", SALES, at=START + timedelta(hours=5))
    analytics.record_module_completion("u1", SALES, f"{SALES}-m1")
    analytics.save_user_course_progress(
        {
            "userId": "u1",
            "courseId": SALES,
            "status": "completed",
            "overallScore": 90,
            "startedAt": START,
            "completedAt": START + timedelta(hours=5),
            "lastAccessedAt": START + timedelta(hours=5),
            "totalTimeSpentMinutes": 300,
            "moduleProgress": [],
        }
    )
    ms = int(START.timestamp() * 1000)
    assert client.zrange("training:enrollment:timeseries", 0, -1, withscores=True) == [
        (f"{ms}:u1:{SALES}", ms)
    ]
    assert client.get("training:enrollment:date:2025-05-01") == "1"
    progress = client.hgetall(f"training:progress:u1:{SALES}")
    assert progress == {
        "status": "completed",
        "moduleProgress": "[]",
        "overallScore": "90",
        "startedAt": "2025-05-01T09:00:00.000Z",
        "completedAt": "2025-05-01T14:00:00.000Z",
        "lastAccessedAt": "2025-05-01T14:00:00.000Z",
        "totalTimeSpentMinutes": "300",
        "certificateId": "",
        "certificateIssuedAt": "",
    }
    # The seed's own read algorithm, run over what this library wrote, gives the same answer.
    assert (
        seed_oracle.course_detailed_analytics(client, SALES)
        == analytics.get_course_detailed_analytics(SALES).model_dump()
    )
    assert seed_oracle.overview(client) == analytics.get_training_overview_metrics().model_dump()


def test_enhanced_mapping_of_seed_courses(seed_store: redis.Redis, analytics: Any) -> None:
    enhanced = {c.id: c for c in analytics.get_all_enhanced_courses()}
    sales = enhanced[SALES]
    assert sales.estimated_hours == 4  # ceil(185 / 60)
    assert sales.status == "published" and sales.has_certification
    assert (
        sales.certification is not None and sales.certification.credential_name == "Selling Sovra"
    )
    assert [m.type for m in sales.modules] == ["video", "reading", "reading", "quiz"]
    assert [m.passing_score for m in sales.modules] == [70, 80, 70, 70]
    assert sales.modules[0].video_url == "https://v.example/1"
    assert sales.modules[0].content == {"en": "<p>Hi</p>"}
    assert sales.modules[0].duration == 30
    assert (
        sales.modules[3].questions is not None and sales.modules[3].questions[0].correct_answer == 1
    )
    legal = enhanced[LEGAL]
    assert legal.status == "draft" and legal.certification is None
    assert [c.id for c in analytics.get_enhanced_courses_by_status("draft")] == [LEGAL]
    dumped = sales.model_dump()
    assert {"estimatedHours", "hasCertification", "passingScore", "createdBy"} <= dumped.keys()


def test_every_remaining_read_on_seed_data(seed_store: redis.Redis, analytics: Any) -> None:
    analytics.reindex()
    oracle = seed_oracle.course_detailed_analytics(seed_store, SALES)
    for i, module in enumerate(oracle["dropoffRates"], 1):
        rate = analytics.get_module_dropoff_rate(SALES, f"{SALES}-m{i}")
        assert rate == module["dropoffRate"]
    assert (
        analytics.calculate_average_completion()
        == seed_oracle.overview(seed_store)["averageCompletionRate"]
    )
    assert [c.id for c in analytics.get_published_training_courses()] == [SALES]
    assert [c.id for c in analytics.get_training_courses_by_category("legal")] == [LEGAL]
    raw_days = {
        k.rsplit(":", 1)[1]: int(v)
        for k in seed_store.scan_iter("training:completion:date:*")
        if (v := seed_store.get(k))
    }
    series = analytics.get_completion_time_series("2025-05-01", "2025-06-30")
    assert {p.date: p.count for p in series if p.count} == raw_days
    daily = analytics.get_daily_completion_counts("2025-05-01", "2025-06-30")
    assert sum(p.count for p in daily) == sum(raw_days.values()) > 0
    assert sorted(analytics.get_course_completions(LEGAL)) == sorted(
        seed_store.smembers(f"training:completions:{LEGAL}")
    )
    assert analytics.get_course_completion_count(SALES) == seed_store.scard(
        f"training:completions:{SALES}"
    )


def test_series_fall_back_to_the_sorted_set_without_day_counters(
    seed_store: redis.Redis, analytics: Any
) -> None:
    # Stores filled by other tooling may hold the event series without the day counters.
    for key in list(seed_store.scan_iter("training:enrollment:date:*")):
        seed_store.delete(key)
    members = cast(
        list[tuple[str, float]],
        seed_store.zrange("training:enrollment:timeseries", 0, -1, withscores=True),
    )
    expected: dict[str, int] = {}
    for _, score in members:
        day = datetime.fromtimestamp(score / 1000, tz=UTC).date().isoformat()
        expected[day] = expected.get(day, 0) + 1
    series = analytics.get_enrollment_time_series("2025-05-01", "2025-05-31")
    assert {p.date: p.count for p in series if p.count} == expected
    assert all(
        p.count == 0 for p in analytics.get_daily_enrollment_counts("2025-05-01", "2025-05-31")
    )


def test_a_course_title_stored_as_plain_text_reads_as_english(
    client: redis.Redis, analytics: Any
) -> None:
    course = _course(SALES, {"en": "x"}, 1, True, 1)
    seed_writer.create_course(client, course)
    client.hset(
        f"training:course:{SALES}", mapping={"title": "Selling Sovra", "description": '"Quoted"'}
    )
    stored = analytics.get_training_course(SALES)
    assert stored is not None
    assert stored.title == {"en": "Selling Sovra"}
    assert stored.description == {"en": "Quoted"}
    assert analytics.get_all_enhanced_courses()[0].certification.credential_name == "Selling Sovra"


def test_progress_saved_before_enrolment_counts_once_the_learner_enrols(
    seed_store: redis.Redis, analytics: Any
) -> None:
    report = analytics.reindex()
    assert report.unenrolled_progress == 1  # the ghost's, in SALES
    before = analytics.get_course_detailed_analytics(SALES)
    analytics.record_enrollment("ghost", SALES, at=NOW)
    after = analytics.get_course_detailed_analytics(SALES)
    assert after.model_dump() == seed_oracle.course_detailed_analytics(seed_store, SALES)
    assert after.average_score < before.average_score  # the ghost scored 1
    # Counted once: enrolling again, or rebuilding, changes nothing.
    analytics.record_enrollment("ghost", SALES, at=NOW)
    assert analytics.get_course_detailed_analytics(SALES) == after
    assert analytics.reindex().unenrolled_progress == 0
    assert analytics.get_course_detailed_analytics(SALES) == after


def test_reindex_skips_progress_keys_it_cannot_read(
    seed_store: redis.Redis, analytics: Any
) -> None:
    seed_store.set(f"training:progress:stray:{SALES}", "not a hash")
    seed_store.hset(f"training:progress:odd:{SALES}:extra", mapping={"overallScore": "50"})
    report = analytics.reindex()
    assert report.unenrolled_progress == 1  # the ghost's only
    assert analytics.get_course_detailed_analytics(
        SALES
    ).model_dump() == seed_oracle.course_detailed_analytics(seed_store, SALES)
