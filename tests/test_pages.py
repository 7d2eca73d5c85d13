"""Cursor-paginated listings: certifications, expiring certificates, course analytics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import redis

import training_analytics as ta
from training_analytics import pages
from training_analytics._exec import execute
from training_analytics._protocol import Batch

from .factories import NOW, certification, course
from .stores import ONE_SERVER


def _iso(days: float) -> str:
    return (NOW + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _walk(analytics: Any, **filters: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = analytics.list_certifications(cursor=cursor, **filters)
        pages.append([r.id for r in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) < 1000


@pytest.mark.parametrize("count", [7, 450])  # a listpack-encoded set and a hashtable one
def test_certifications_are_paged_without_repeats_or_gaps(analytics: Any, count: int) -> None:
    ids = [f"cert{i:04d}" for i in range(count)]
    analytics.record_many(
        {"kind": "certification_issued", "certification": certification(i, courseId=f"c{n % 3}")}
        for n, i in enumerate(ids)
    )
    pages = _walk(analytics, limit=5)
    assert all(len(p) <= 5 for p in pages)
    seen = [i for p in pages for i in p]
    assert sorted(seen) == ids
    course_pages = _walk(analytics, limit=4, course_id="c1")
    assert sorted(i for p in course_pages for i in p) == ids[1::3]


def test_certifications_filter_by_status_and_course(analytics: Any) -> None:
    analytics.issue_training_certification(certification("a", courseId="c1"))
    analytics.issue_training_certification(certification("b", courseId="c2"))
    analytics.issue_training_certification(certification("c", courseId="c1"))
    analytics.update_certification_status("c", "claimed", claimed_at=_iso(-1))
    page = analytics.list_certifications(status="claimed")
    assert [r.id for r in page.items] == ["c"] and page.next_cursor is None
    assert page.items[0].status == "claimed"
    page = analytics.list_certifications(status="issued", course_id="c1")
    assert [r.id for r in page.items] == ["a"]
    assert analytics.list_certifications(status="revoked").items == []


def test_listing_checks_its_arguments(analytics: Any) -> None:
    for bad in (0, 1001, True):
        with pytest.raises(ta.InvalidInputError, match="limit"):
            analytics.list_certifications(limit=bad)
    crafted = [
        pages.encode_cursor({"scan": 2**64, "after": None}),
        pages.encode_cursor({"scan": True, "after": None}),
        pages.encode_cursor({"scan": 0, "after": 5}),
    ]
    for cursor in ("!!", "e30", "bm90IGpzb24", *crafted):
        with pytest.raises(ta.InvalidInputError, match="cursor"):
            analytics.list_certifications(cursor=cursor)
    for state in ({"after": "c1", "order": 10**400}, {"after": 1, "order": 0}):
        with pytest.raises(ta.InvalidInputError, match="cursor"):
            analytics.list_course_analytics(cursor=pages.encode_cursor(state))
    with pytest.raises(ta.InvalidIdError):
        analytics.list_certifications(status="lost")
    with pytest.raises(ta.InvalidIdError):
        analytics.list_certifications(course_id="a:b")


def test_expiring_are_the_soonest_within_the_window(analytics: Any) -> None:
    expiries = {"late": 25, "soon": 2, "gone": -1, "far": 40, "mid": 10, "claimed": 5}
    for cert_id, days in expiries.items():
        analytics.issue_training_certification(
            certification(cert_id, issuedAt=_iso(-30), expiresAt=_iso(days))
        )
    analytics.update_certification_status("claimed", "claimed", claimed_at=_iso(-2))
    analytics.issue_training_certification(
        certification("revoked", issuedAt=_iso(-30), expiresAt=_iso(3))
    )
    analytics.update_certification_status("revoked", "revoked")
    found = analytics.get_expiring_certifications(days=30)
    assert [r.id for r in found] == ["soon", "claimed", "mid", "late"]
    assert [r.id for r in analytics.get_expiring_certifications(days=30, limit=2)] == [
        "soon",
        "claimed",
    ]
    assert [r.id for r in analytics.get_expiring_certifications(days=3)] == ["soon"]
    assert analytics.get_credential_claim_analytics().expiring_in_30_days == 4
    with pytest.raises(ta.InvalidInputError, match="days"):
        analytics.get_expiring_certifications(days=0)


def test_course_analytics_pages_follow_the_catalog_order(analytics: Any) -> None:
    for n in range(5):
        analytics.create_training_course(course(f"c{n}", order=5 - n, isPublished=n % 2 == 0))
    analytics.record_enrollment("u1", "c3")
    analytics.record_completion("u1", "c3")
    first = analytics.list_course_analytics(limit=2)
    assert [i.id for i in first.items] == ["c4", "c3"]
    assert first.items[1].analytics == analytics.get_course_detailed_analytics("c3")
    assert first.items[1].analytics.completions == 1 and first.items[1].status == "draft"
    assert first.items[0].title == {"en": "Course c4", "es": "Curso c4"}
    second = analytics.list_course_analytics(limit=2, cursor=first.next_cursor)
    assert [i.id for i in second.items] == ["c2", "c1"]
    analytics.delete_training_course("c1")  # the cursor's course: resume where it stood
    third = analytics.list_course_analytics(limit=2, cursor=second.next_cursor)
    assert [i.id for i in third.items] == ["c0"] and third.next_cursor is None
    analytics.create_training_course(course("huge", order=2**53 - 1))  # the largest order taken
    last = analytics.list_course_analytics(limit=1, cursor=second.next_cursor)
    assert [i.id for i in last.items] == ["c0"] and last.next_cursor is not None
    assert [i.id for i in analytics.list_course_analytics(cursor=last.next_cursor).items] == [
        "huge"
    ]
    body = third.model_dump(by_alias=True)
    assert set(body) == {"items", "nextCursor"}
    assert "completionRate" in body["items"][0]["analytics"]


@ONE_SERVER
def test_course_analytics_page_costs_a_fixed_number_of_round_trips(
    analytics: Any, client: redis.Redis
) -> None:
    for n in range(30):
        analytics.create_training_course(course(f"c{n:02d}", order=n))
    analytics.record_enrollment("u1", "c00")  # the first write sets the index marker
    op = pages.list_course_analytics(analytics.context, limit=30)
    round_trips = 0
    try:
        request = next(op)
        while True:
            round_trips += 1
            assert isinstance(request, Batch)
            request = op.send(execute(client, request))
    except StopIteration as done:
        assert len(done.value.items) == 30
    assert round_trips == 3  # the page of ids, the courses' first reads, their drop-off
