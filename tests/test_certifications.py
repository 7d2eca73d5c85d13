"""The certification lifecycle and claim analytics, on a real server, through both facades."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import redis

import training_analytics as ta

from .factories import NOW, Factory, certification, snapshot
from .stores import RAW_KEYS


@RAW_KEYS
def test_issue_is_stored_in_the_seed_format_and_idempotent(
    analytics: Any, client: redis.Redis
) -> None:
    assert analytics.issue_training_certification(certification()) is True
    assert analytics.issue_training_certification(certification()) is False
    stored = client.hgetall("training:certification:cert1")
    assert stored["courseName"] == '{"en":"Course c1"}'
    assert stored["score"] == "88"
    assert stored["claimedAt"] == ""
    assert stored["status"] == "issued"
    assert client.smembers("training:certifications:all") == {"cert1"}
    assert client.smembers("training:certifications:status:issued") == {"cert1"}
    record = analytics.get_training_certification("cert1")
    assert record.course_name == {"en": "Course c1"}
    assert record.claimed_at is None
    assert [r.id for r in analytics.get_all_training_certifications()] == ["cert1"]


def test_same_id_with_other_data_is_refused(analytics: Any, client: redis.Redis) -> None:
    analytics.issue_training_certification(certification())
    before = snapshot(client)
    with pytest.raises(ta.CertificationExistsError):
        analytics.issue_training_certification(certification(score=12))
    assert snapshot(client) == before


def test_a_refused_reissue_names_the_first_field_that_differs(
    analytics: Any, client: redis.Redis
) -> None:
    # Fields are compared in the record's order (id, userId, courseId, ..., score), the same on
    # every server: not in the order of a Lua table's traversal, which Redis 7 and Valkey 9
    # do not share.
    analytics.issue_training_certification(certification())
    with pytest.raises(ta.CertificationExistsError, match=r"different userName$"):
        analytics.issue_training_certification(certification(score=12, userName="Bea"))
    with pytest.raises(ta.CertificationExistsError, match=r"different courseName$"):
        analytics.issue_training_certification(
            certification(verificationCode="VC-2", courseName={"en": "Other"})
        )


@RAW_KEYS
def test_claim_records_claimed_at_and_moves_the_status_set(
    analytics: Any, client: redis.Redis
) -> None:
    analytics.issue_training_certification(certification())
    assert analytics.update_certification_status(
        "cert1", "claimed", claimed_at="2025-06-02T10:00:00Z"
    )
    assert client.hget("training:certification:cert1", "claimedAt") == "2025-06-02T10:00:00.000Z"
    assert client.smembers("training:certifications:status:issued") == set()
    assert client.smembers("training:certifications:status:claimed") == {"cert1"}
    assert analytics.update_certification_status("cert1", "claimed") is False  # already claimed
    analytics_result = analytics.get_credential_claim_analytics()
    assert analytics_result.total_claimed == 1
    assert analytics_result.average_claim_time_hours == 24.0


@RAW_KEYS
def test_claim_defaults_to_the_clock(analytics: Any, client: redis.Redis) -> None:
    analytics.issue_training_certification(certification())
    analytics.update_certification_status("cert1", "claimed")
    assert client.hget("training:certification:cert1", "claimedAt") == "2025-06-15T12:00:00.000Z"


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        (["claimed"], "issued"),
        (["expired"], "claimed"),
        (["expired"], "issued"),
        (["revoked"], "issued"),
        (["revoked"], "claimed"),
        (["revoked"], "expired"),
        (["claimed", "expired"], "claimed"),  # at another time than the stored claim
        (["claimed", "revoked"], "claimed"),
        # An expiry replayed after the revocation that followed it: the store keeps no trace
        # of the expiry, so it cannot tell a replay from a move back.
        (["expired", "revoked"], "expired"),
    ],
)
def test_illegal_transitions_raise_and_change_nothing(
    analytics: Any, client: redis.Redis, path: list[str], illegal: str
) -> None:
    analytics.issue_training_certification(certification())
    for status in path:
        analytics.update_certification_status("cert1", status, claimed_at="2025-06-02T00:00:00Z")
    before = snapshot(client)
    with pytest.raises(ta.IllegalTransitionError):
        analytics.update_certification_status("cert1", illegal, claimed_at="2025-06-03T00:00:00Z")
    assert snapshot(client) == before


@pytest.mark.parametrize(
    "path",
    [
        ["claimed"],
        ["expired"],
        ["revoked"],
        ["claimed", "expired"],
        ["claimed", "revoked"],
        ["expired", "revoked"],
        ["claimed", "expired", "revoked"],
    ],
)
@RAW_KEYS
def test_legal_paths_keep_one_status_set_per_certificate(
    analytics: Any, client: redis.Redis, path: list[str]
) -> None:
    analytics.issue_training_certification(certification())
    for status in path:
        assert analytics.update_certification_status(
            "cert1", status, claimed_at="2025-06-02T00:00:00Z"
        )
    holders = [
        s
        for s in ta.keys.CERTIFICATION_STATUSES
        if client.sismember(f"training:certifications:status:{s}", "cert1")
    ]
    assert holders == [path[-1]]
    assert client.hget("training:certification:cert1", "status") == path[-1]


def test_unknown_certificate_raises(analytics: Any, client: redis.Redis) -> None:
    before = snapshot(client)
    with pytest.raises(ta.CertificationNotFoundError):
        analytics.update_certification_status("nope", "claimed")
    with pytest.raises(ta.InvalidStatusError):
        analytics.update_certification_status("nope", "lost")
    assert snapshot(client) == before


def test_claims_at_or_after_expiry_or_before_issue_are_refused(
    analytics: Any, client: redis.Redis
) -> None:
    analytics.issue_training_certification(certification(expiresAt="2025-07-01T00:00:00Z"))
    before = snapshot(client)
    with pytest.raises(ta.CertificationExpiredError):
        analytics.update_certification_status("cert1", "claimed", claimed_at="2025-07-01T00:00:00Z")
    with pytest.raises(ta.InvalidInputError):
        analytics.update_certification_status("cert1", "claimed", claimed_at="2025-05-01T00:00:00Z")
    with pytest.raises(ta.InvalidDateError):
        analytics.update_certification_status("cert1", "claimed", claimed_at="soon")
    assert snapshot(client) == before


def test_claim_analytics_count_time_expiry_and_pending(make_analytics: Factory) -> None:
    analytics = make_analytics()
    day = timedelta(days=1)

    def iso(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    # Issued, expiring in 10 days: pending and expiring soon.
    analytics.issue_training_certification(
        certification("a", issuedAt=iso(NOW - 5 * day), expiresAt=iso(NOW + 10 * day))
    )
    # Claimed after 48 hours, expiring in 20 days: claimed and expiring soon.
    analytics.issue_training_certification(
        certification("b", issuedAt=iso(NOW - 5 * day), expiresAt=iso(NOW + 20 * day))
    )
    analytics.update_certification_status("b", "claimed", claimed_at=iso(NOW - 3 * day))
    # Issued, expiry passed yesterday, never marked: counts as expired, not pending.
    analytics.issue_training_certification(
        certification("c", issuedAt=iso(NOW - 400 * day), expiresAt=iso(NOW - day))
    )
    # Claimed after 24 hours, then revoked: still was claimed; not pending.
    analytics.issue_training_certification(certification("d", issuedAt=iso(NOW - 9 * day)))
    analytics.update_certification_status("d", "claimed", claimed_at=iso(NOW - 8 * day))
    analytics.update_certification_status("d", "revoked")
    # Issued with no expiry, expiring in 90 days: pending, not expiring soon.
    analytics.issue_training_certification(certification("e", expiresAt=None))
    analytics.issue_training_certification(
        certification("f", issuedAt=iso(NOW - day), expiresAt=iso(NOW + 90 * day))
    )
    result = analytics.get_credential_claim_analytics()
    assert result.model_dump() == {
        "totalIssued": 6,
        "totalClaimed": 2,
        "claimRate": 33.33,
        "averageClaimTimeHours": 36.0,
        "pending": 3,
        "expiringIn30Days": 2,
    }
    stats = analytics.get_credential_stats()
    assert (stats.issued, stats.claimed, stats.pending, stats.expired, stats.revoked) == (
        3,
        1,
        3,
        1,
        1,
    )
    # Eleven days later, "a" has expired as well.
    later = make_analytics(clock=lambda: NOW + 11 * day)
    assert later.get_credential_claim_analytics().pending == 2
    assert later.get_credential_claim_analytics().expiring_in_30_days == 1
    assert later.get_credential_stats().expired == 2


def test_issue_validates_the_record(analytics: Any, client: redis.Redis) -> None:
    before = snapshot(client)
    cases: list[tuple[dict[str, Any], type[Exception]]] = [
        (certification(score=101), ta.InvalidScoreError),
        (certification(score=-1), ta.InvalidScoreError),
        (certification(id=""), ta.InvalidIdError),
        (certification(id="a:b"), ta.InvalidIdError),
        (certification(userId="u 1"), ta.InvalidIdError),
        (certification(issuedAt="yesterday"), ta.InvalidDateError),
        (certification(expiresAt="2025-01-01T00:00:00Z"), ta.InvalidDateRangeError),
        (certification(status="lost"), ta.InvalidInputError),
        ({"id": "x"}, ta.InvalidInputError),
    ]
    for record, error in cases:
        with pytest.raises(error):
            analytics.issue_training_certification(record)
    assert snapshot(client) == before


def test_issue_claimed_directly_counts_the_claim(analytics: Any) -> None:
    analytics.issue_training_certification(
        certification(status="claimed", claimedAt="2025-06-01T22:00:00Z")
    )
    result = analytics.get_credential_claim_analytics()
    assert (result.total_claimed, result.average_claim_time_hours, result.pending) == (1, 12.0, 0)


LIFECYCLES = [
    ["claimed"],
    ["expired"],
    ["revoked"],
    ["claimed", "expired"],
    ["claimed", "revoked"],
    ["expired", "revoked"],
    ["claimed", "expired", "revoked"],
]


@pytest.mark.parametrize("path", LIFECYCLES)
def test_reissuing_a_certificate_that_moved_on_is_a_replay(
    analytics: Any, client: redis.Redis, path: list[str]
) -> None:
    # Replaying a history: the issue comes again after the claims, expiries and revocations
    # that followed it. It is the same certificate, so nothing changes and nothing is refused.
    analytics.issue_training_certification(certification())
    for status in path:
        analytics.update_certification_status("cert1", status, claimed_at="2025-06-02T00:00:00Z")
    before = snapshot(client)
    assert analytics.issue_training_certification(certification()) is False
    result = analytics.record_many(
        [{"kind": "certification_issued", "certification": certification()}] * 2
    )
    assert (result.applied, result.unchanged, result.rejected) == (0, 2, [])
    assert snapshot(client) == before


@pytest.mark.parametrize(
    ("stored", "path", "reissued", "field"),
    [
        # Claimed at one time, re-issued as claimed at another.
        ({}, ["claimed"], {"status": "claimed", "claimedAt": "2025-06-03T00:00:00Z"}, "claimedAt"),
        # Issued as claimed; later re-issued as claimed at another time, then as issued
        # (an issue does not go back from claimed).
        (
            {"status": "claimed", "claimedAt": "2025-06-02T00:00:00Z"},
            [],
            {"status": "claimed", "claimedAt": "2025-06-03T00:00:00Z"},
            "claimedAt",
        ),
        ({}, [], {"status": "claimed", "claimedAt": "2025-06-02T00:00:00Z"}, "status"),
        # Expired without a claim: an issue as claimed would have left its claim time.
        ({}, ["expired"], {"status": "claimed", "claimedAt": "2025-06-02T00:00:00Z"}, "status"),
        # Revoked after a claim: an issue as expired never passes through claimed.
        ({}, ["claimed", "revoked"], {"status": "expired"}, "status"),
        # Moved on, but another field differs.
        ({}, ["claimed"], {"score": 12}, "score"),
        ({}, ["revoked"], {"userName": "Bea"}, "userName"),
    ],
)
def test_a_reissue_the_history_cannot_explain_is_refused(
    analytics: Any,
    client: redis.Redis,
    stored: dict[str, Any],
    path: list[str],
    reissued: dict[str, Any],
    field: str,
) -> None:
    analytics.issue_training_certification(certification(**stored))
    for status in path:
        analytics.update_certification_status("cert1", status, claimed_at="2025-06-02T00:00:00Z")
    before = snapshot(client)
    with pytest.raises(ta.CertificationExistsError, match=rf"different {field}$"):
        analytics.issue_training_certification(certification(**reissued))
    assert snapshot(client) == before


@pytest.mark.parametrize(
    ("stored", "path", "reissued"),
    [
        # Issued as claimed, re-issued as issued: the claim followed the issue.
        ({"status": "claimed", "claimedAt": "2025-06-02T00:00:00Z"}, [], {}),
        # Issued as claimed, then revoked: the same record again.
        (
            {"status": "claimed", "claimedAt": "2025-06-02T00:00:00Z"},
            ["revoked"],
            {"status": "claimed", "claimedAt": "2025-06-02T00:00:00.000Z"},
        ),
        # Issued as expired, then revoked.
        ({"status": "expired"}, ["revoked"], {"status": "expired"}),
    ],
)
def test_a_reissue_the_history_explains_changes_nothing(
    analytics: Any,
    client: redis.Redis,
    stored: dict[str, Any],
    path: list[str],
    reissued: dict[str, Any],
) -> None:
    analytics.issue_training_certification(certification(**stored))
    for status in path:
        analytics.update_certification_status("cert1", status)
    before = snapshot(client)
    assert analytics.issue_training_certification(certification(**reissued)) is False
    assert snapshot(client) == before


@pytest.mark.parametrize("path", [["claimed", "expired"], ["claimed", "revoked"], LIFECYCLES[-1]])
def test_a_claim_replayed_after_the_certificate_moved_on_is_unchanged(
    analytics: Any, client: redis.Redis, path: list[str]
) -> None:
    # The stored claim time says this claim happened: the store already holds it.
    analytics.issue_training_certification(certification())
    for status in path:
        analytics.update_certification_status("cert1", status, claimed_at="2025-06-02T00:00:00Z")
    before = snapshot(client)
    assert (
        analytics.update_certification_status(
            "cert1", "claimed", claimed_at="2025-06-02T00:00:00.000Z"
        )
        is False
    )
    result = analytics.record_many(
        [
            {
                "kind": "certification_status",
                "certId": "cert1",
                "newStatus": "claimed",
                "claimedAt": "2025-06-02T00:00:00Z",
            }
        ]
        * 2
    )
    assert (result.applied, result.unchanged, result.rejected) == (0, 2, [])
    assert snapshot(client) == before


def test_a_batch_moving_a_certificate_twice_ends_as_the_calls_one_by_one(
    make_analytics: Factory,
) -> None:
    # A certificate moved twice in one batch (claimed then revoked) ends in the revoked set
    # alone, its claim counted, as with one call per event.
    def events(prefix: str) -> list[dict[str, Any]]:
        def change(cert: str, status: str, day: int = 2) -> dict[str, Any]:
            return {
                "kind": "certification_status",
                "certId": f"{prefix}{cert}",
                "newStatus": status,
                "claimedAt": f"2025-06-0{day}T00:00:00Z",
            }

        return [
            *(
                {"kind": "certification_issued", "certification": certification(f"{prefix}{c}")}
                for c in "abcd"
            ),
            change("a", "claimed"),
            change("a", "revoked"),
            change("b", "expired"),
            change("b", "revoked"),
            change("c", "claimed", 3),
            change("d", "revoked"),
            change("d", "claimed"),  # refused: nothing of it is written
        ]

    batched, one_by_one = make_analytics(), make_analytics()
    result = batched.record_many(events("x"))
    assert (result.applied, len(result.rejected)) == (10, 1)
    for event in events("y"):
        one_by_one.record_many([event])
    for prefix, facade in (("x", batched), ("y", one_by_one)):
        assert [facade.get_training_certification(f"{prefix}{c}").status for c in "abcd"] == [
            "revoked",
            "revoked",
            "claimed",
            "revoked",
        ]
    # Both histories share the store: each figure counts both.
    assert sorted(r.id for r in batched.get_expiring_certifications(days=400)) == ["xc", "yc"]
    stats = batched.get_credential_stats()
    assert (stats.issued, stats.claimed, stats.expired, stats.revoked) == (0, 2, 0, 6)
    claims = batched.get_credential_claim_analytics()
    assert (claims.total_issued, claims.total_claimed, claims.pending) == (8, 4, 0)
