"""Certificate reads on a real cluster: credential analytics and stats, every certification,
the paginated listing and the soonest-expiring certificates, summed or merged over the
certificate buckets, compared with the suite's single server (sync and asyncio on the cluster).

The history: a few thousand certificates over ten courses, issued over the past year, expiring
in the past, around now, within the 30-day window and later (some on the same millisecond, so
ties are ordered by id), claimed at various delays, expired, revoked (from issued and from
claimed). Plus what only the buckets bring: a bucket without its marker, drift in one bucket,
cluster cursors, and the round trips a read costs.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster

import training_analytics as ta
from training_analytics import pages
from training_analytics._protocol import Batch, Op, ScriptCall
from training_analytics.certifications import (
    CertificateFigures,
    stats_from_figures,
    sum_figures,
)
from training_analytics.cluster.executor import execute_cluster, run_on_cluster
from training_analytics.cluster.local import ClusterControl
from training_analytics.credentials import claim_analytics_from_figures
from training_analytics.pages import (
    BucketPosition,
    decode_bucket_cursor,
    encode_bucket_cursor,
    following,
    merge_soonest,
    next_window,
    score_pairs,
)

from .factories import NOW

COURSES = [f"c{n}" for n in range(10)]
CERTIFICATES = 3000


def _clock() -> datetime:
    return NOW


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def history(count: int = CERTIFICATES, seed: int = 14) -> list[dict[str, Any]]:
    """Certificates issued and moved through every status, expiring all around now."""
    rng = random.Random(seed)
    day = timedelta(days=1)
    # A few shared expiry instants: ties in the expiry index, broken by id.
    shared = [NOW + timedelta(days=d, hours=3) for d in (-2, 0.5, 3, 12, 29.9)]
    events: list[dict[str, Any]] = []
    for n in range(count):
        cert = f"cert-{rng.randrange(16**6):06x}-{n}"
        issued = NOW - rng.uniform(0.01, 400) * day
        roll = rng.random()
        if roll < 0.1:
            expires = rng.choice(shared)
        elif roll < 0.35:
            expires = NOW + rng.uniform(-0.5, 30.5) * day  # around now and the 30-day window
        elif roll < 0.55:
            expires = NOW - rng.uniform(0, 300) * day  # overdue, never marked
        else:
            expires = NOW + rng.uniform(30, 700) * day
        expires = max(expires, issued + timedelta(minutes=1))
        events.append(
            {
                "kind": "certification_issued",
                "at": _iso(issued),
                "certification": {
                    "id": cert,
                    "userId": f"u{rng.randrange(800)}",
                    "courseId": rng.choice(COURSES),
                    "courseName": {"en": "Course"},
                    "userName": "Learner",
                    "userEmail": "learner@example.com",
                    "status": "issued",
                    "issuedAt": _iso(issued),
                    "expiresAt": _iso(expires),
                    "verificationCode": f"VC-{n}",
                    "score": rng.randrange(50, 101),
                },
            }
        )
        fate = rng.random()
        latest = min(expires, NOW)
        if fate < 0.45 and latest > issued:
            claimed = issued + (latest - issued) * rng.uniform(0, 0.99)
            events.append(
                {
                    "kind": "certification_status",
                    "certId": cert,
                    "newStatus": "claimed",
                    "claimedAt": _iso(claimed),
                    "at": _iso(claimed),
                }
            )
            if rng.random() < 0.15:
                events.append(_status(cert, rng.choice(["revoked", "expired"]), NOW))
        elif fate < 0.55:
            events.append(_status(cert, "revoked", NOW))
        elif fate < 0.62:
            events.append(_status(cert, "expired", NOW))
    return events


def _status(cert: str, status: str, at: datetime) -> dict[str, Any]:
    return {"kind": "certification_status", "certId": cert, "newStatus": status, "at": _iso(at)}


HISTORY = history()


@pytest.fixture(params=["sync", "async"])
def cluster_facade(
    request: pytest.FixtureRequest,
    cluster: ClusterControl,
    cluster_client: redis.cluster.RedisCluster,
) -> Iterator[Any]:
    """A facade on the flushed cluster, sync or asyncio (called like the sync one)."""
    if request.param == "sync":
        yield ta.TrainingAnalytics(cluster_client, clock=_clock)
        return
    loop = asyncio.new_event_loop()
    seed = cluster.nodes()[0]
    aclient = redis.asyncio.cluster.RedisCluster(
        host=seed.host, port=seed.port, password=cluster.password
    )
    facade = ta.AsyncTrainingAnalytics(aclient, clock=_clock)

    class View:
        keys = facade.keys

        def __getattr__(self, name: str) -> Any:
            method = getattr(facade, name)
            return lambda *a, **k: loop.run_until_complete(method(*a, **k))

    yield View()
    loop.run_until_complete(aclient.aclose())
    loop.close()


@pytest.fixture
def single(client: redis.Redis) -> ta.TrainingAnalytics:
    return ta.TrainingAnalytics(client, clock=_clock)


def _walk(facade: Any, limit: int, **filters: Any) -> list[list[ta.TrainingCertificationRecord]]:
    found, cursor = [], None
    while True:
        page = facade.list_certifications(cursor=cursor, limit=limit, **filters)
        assert len(page.items) <= limit
        found.append(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return found
        assert len(found) < 5000


def _bucket_number(facade: Any, cert_id: str) -> int:
    return int(facade.keys.certification_bucket(cert_id).rsplit(":", 1)[1])


def _record(facade: Any, events: list[dict[str, Any]]) -> None:
    result = facade.record_many(events, batch_size=500)
    assert result.rejected == [], result.rejected[:3]


def test_every_certificate_read_gives_the_single_servers_answer(
    cluster_facade: Any, single: ta.TrainingAnalytics
) -> None:
    _record(single, HISTORY)
    _record(cluster_facade, HISTORY)

    # The history reaches every status and both sides of the window.
    stats = single.get_credential_stats()
    assert min(stats.issued, stats.claimed, stats.expired, stats.revoked) > 100
    claims = single.get_credential_claim_analytics()
    assert claims.expiring_in_30_days > 100 and claims.total_claimed > 500

    assert cluster_facade.get_credential_stats() == stats
    assert cluster_facade.get_credential_claim_analytics() == claims

    everything = single.get_all_training_certifications()
    assert len(everything) == CERTIFICATES
    assert cluster_facade.get_all_training_certifications() == everything

    for days in (1, 3, 30, 365, 3660):
        for limit in (1, 7, 50, 1000):
            expected = single.get_expiring_certifications(days=days, limit=limit)
            found = cluster_facade.get_expiring_certifications(days=days, limit=limit)
            assert found == expected, (days, limit)
    assert len(single.get_expiring_certifications(days=30, limit=1000)) > 100

    by_id = {r.id: r for r in everything}
    for limit, filters in [
        (7, {}),
        (50, {}),
        (333, {}),
        (1000, {}),
        (40, {"status": "claimed"}),
        (25, {"status": "revoked"}),
        (60, {"status": "issued", "course_id": "c3"}),
        (9, {"course_id": "c7"}),
        (5, {"status": "expired", "course_id": "nobody"}),
    ]:
        walked = [r for page in _walk(cluster_facade, limit, **filters) for r in page]
        expected = [r for page in _walk(single, limit, **filters) for r in page]
        ids = [r.id for r in walked]
        assert len(ids) == len(set(ids)), f"duplicates with {limit} {filters}"
        assert sorted(ids) == sorted(r.id for r in expected), (limit, filters)
        assert all(by_id[r.id] == r for r in walked)
        # Bucket by bucket, each batch by id (these buckets are small: one batch each).
        order = [(_bucket_number(cluster_facade, i), i) for i in ids]
        assert order == sorted(order), (limit, filters)


def test_an_empty_cluster_answers_as_an_empty_server(
    cluster_facade: Any, single: ta.TrainingAnalytics
) -> None:
    assert cluster_facade.get_credential_stats() == single.get_credential_stats()
    assert cluster_facade.get_credential_claim_analytics() == (
        single.get_credential_claim_analytics()
    )
    assert cluster_facade.get_all_training_certifications() == []
    assert cluster_facade.get_expiring_certifications() == []
    page = cluster_facade.list_certifications(limit=1000)
    assert page.items == []
    # Ten rounds of a doubling window reach every bucket of an empty store.
    assert page.next_cursor is None
    assert cluster_facade.list_certifications(status="claimed").next_cursor is None


def test_drift_in_one_bucket_raises(
    cluster_facade: Any, cluster_client: redis.cluster.RedisCluster
) -> None:
    _record(cluster_facade, HISTORY[:300])
    keys = cluster_facade.keys
    cert = HISTORY[0]["certification"]["id"]
    bucket = keys.certification_bucket(cert)
    # Another writer adds an id to one bucket's status set behind the library's back.
    cluster_client.sadd(keys.certifications_by_status("revoked", bucket), "ghost")
    for read in ("get_credential_stats", "get_credential_claim_analytics"):
        with pytest.raises(ta.StaleIndexError, match=f"bucket {bucket}.*revoked holds"):
            getattr(cluster_facade, read)()
    cluster_client.srem(keys.certifications_by_status("revoked", bucket), "ghost")
    cluster_facade.get_credential_stats()
    # And one removed from a bucket's set of every certificate.
    cluster_client.srem(keys.all_training_certifications(bucket), cert)
    with pytest.raises(ta.StaleIndexError, match=f"bucket {bucket}.*all holds"):
        cluster_facade.get_credential_claim_analytics()


def test_a_bucket_holding_certificates_without_its_marker_is_not_indexed(
    cluster_facade: Any, cluster_client: redis.cluster.RedisCluster
) -> None:
    _record(cluster_facade, HISTORY[:200])
    keys = cluster_facade.keys
    bucket = keys.certification_bucket(HISTORY[0]["certification"]["id"])
    # What a copy that has not finished a bucket (or a reindex under way) leaves.
    cluster_client.delete(keys.index_marker(bucket))
    for read in ("get_credential_stats", "get_credential_claim_analytics"):
        with pytest.raises(ta.NotIndexedError, match="reindex"):
            getattr(cluster_facade, read)()
    # A bucket without a marker and without certificates is a bucket nobody wrote to yet.
    empty = [
        b
        for b in keys.certification_buckets()
        if not cluster_client.exists(keys.all_training_certifications(b))
    ]
    assert empty
    cluster_client.set(keys.index_marker(bucket), "1")
    cluster_client.delete(*(keys.index_marker(b) for b in empty))
    cluster_facade.get_credential_stats()


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        pages.encode_cursor({"scan": 0, "after": None}),  # a single server's cursor
        pages.encode_cursor({"bucket": 256, "scan": 0, "after": None}),
        pages.encode_cursor({"bucket": -1, "scan": 0, "after": None}),
        pages.encode_cursor({"bucket": True, "scan": 0, "after": None}),
        pages.encode_cursor({"bucket": 3, "scan": -5, "after": None}),
        pages.encode_cursor({"bucket": 3, "scan": 2**64, "after": None}),
        pages.encode_cursor({"bucket": 3, "scan": 0, "after": 7}),
        pages.encode_cursor({"bucket": "3", "scan": 0, "after": None}),
    ],
)
def test_a_malformed_cluster_cursor_is_a_typed_error(cluster_facade: Any, cursor: str) -> None:
    with pytest.raises(ta.InvalidInputError, match="cursor"):
        cluster_facade.list_certifications(cursor=cursor)


def test_bad_filters_are_refused_on_a_cluster(cluster_facade: Any) -> None:
    with pytest.raises(ta.InvalidInputError, match="status"):
        cluster_facade.list_certifications(status="lost")
    with pytest.raises(ta.InvalidInputError):
        cluster_facade.list_certifications(course_id="a:b")
    with pytest.raises(ta.InvalidInputError, match="limit"):
        cluster_facade.list_certifications(limit=0)
    with pytest.raises(ta.InvalidInputError, match="days"):
        cluster_facade.get_expiring_certifications(days=0)


def _counted(op: Op[Any], log: list[int]) -> Op[Any]:
    """The operation, each batch it yields counted (calls per round trip)."""
    reply: Any = None
    try:
        while True:
            request = op.send(reply)
            assert isinstance(request, Batch)
            log.append(len(request.calls))
            reply = yield request
    except StopIteration as done:
        return done.value


@pytest.mark.parametrize("size", [300, 3000])
def test_global_reads_cost_a_few_round_trips_whatever_the_count(
    cluster_client: redis.cluster.RedisCluster, size: int
) -> None:
    """Each batch is one pipeline per node (the executor's grouping): the batches an operation
    yields are its round trips, and they do not grow with the number of certificates."""
    facade = ta.TrainingAnalytics(cluster_client, clock=_clock)
    _record(facade, HISTORY[: size * 2])
    ctx = facade.context

    def batches(function: Any, **kwargs: Any) -> list[int]:
        log: list[int] = []
        run_on_cluster(_counted(function(ctx, **kwargs), log), cluster_client)
        return log

    buckets = ctx.keys.cert_buckets
    # One read-only call per bucket.
    assert batches(ta.credentials.get_credential_claim_analytics) == [buckets]
    assert batches(ta.certifications.get_credential_stats) == [buckets]
    assert len(batches(ta.certifications.get_all_training_certifications)) == 2
    assert len(batches(pages.get_expiring_certifications, days=365, limit=1000)) == 2
    # A page: a window of buckets scanned side by side, then its records: two per round, the
    # window widened to what the items found per bucket say the page still needs.
    for limit in (10, 50, 1000):
        assert len(batches(pages.list_certifications, limit=limit)) <= 6


def test_buckets_scanned_in_several_batches_are_walked_whole(
    cluster_facade: Any, single: ta.TrainingAnalytics, cluster_client: redis.cluster.RedisCluster
) -> None:
    """Two buckets of 300 certificates each (past the server's small-set encoding, so SSCAN
    gives a bucket in several batches): pages resume within a batch and within a bucket."""
    keys = cluster_facade.keys
    chosen = {keys.certification_buckets()[7], keys.certification_buckets()[200]}
    events = history(600, seed=5)
    fresh = (f"crowd-{n}" for n in range(10**6))
    names: dict[str, str] = {}
    for event in events:  # each certificate renamed to an id of one of the two buckets
        if event["kind"] == "certification_issued":
            old = event["certification"]["id"]
            names[old] = next(i for i in fresh if keys.certification_bucket(i) in chosen)
            event["certification"]["id"] = names[old]
        else:
            event["certId"] = names[event["certId"]]
    crowded = events
    _record(single, crowded)
    _record(cluster_facade, crowded)
    for tag in chosen:  # more than one SSCAN batch per bucket
        assert int(cluster_client.sscan(keys.all_training_certifications(tag), 0, count=200)[0])
    for limit, filters in [(7, {}), (50, {}), (199, {}), (1000, {}), (30, {"status": "claimed"})]:
        walked = [r.id for page in _walk(cluster_facade, limit, **filters) for r in page]
        expected = [r.id for page in _walk(single, limit, **filters) for r in page]
        assert len(walked) == len(set(walked))
        assert sorted(walked) == sorted(expected), (limit, filters)
    assert cluster_facade.get_credential_stats() == single.get_credential_stats()
    assert cluster_facade.get_expiring_certifications(days=30, limit=200) == (
        single.get_expiring_certifications(days=30, limit=200)
    )


def test_a_certificate_deleted_under_a_page_loses_no_other(
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    """The page reads only as many records as it needs; when one of them is gone by then, the
    next round resumes after the last one read, not after the batch."""
    facade = ta.TrainingAnalytics(cluster_client, clock=_clock)
    issued = [e for e in HISTORY if e["kind"] == "certification_issued"][:200]
    _record(facade, issued)
    ctx = facade.context
    op = pages.list_certifications(ctx, limit=3)  # far fewer than the first round's window
    request = next(op)
    victim = None
    try:
        while True:
            assert isinstance(request, Batch)
            if victim is None and request.calls[0].args[0] == "HGETALL":
                victim = str(request.calls[0].args[1])
                cluster_client.delete(victim)  # gone between the scan and the read
            request = op.send(execute_cluster(cluster_client, request))
    except StopIteration as done:
        first = done.value
    assert victim is not None and len(first.items) == 3
    seen = [r.id for r in first.items]
    cursor = first.next_cursor
    while cursor is not None:
        page = facade.list_certifications(limit=3, cursor=cursor)
        seen += [r.id for r in page.items]
        cursor = page.next_cursor
    all_ids = {e["certification"]["id"] for e in issued}
    gone = {i for i in all_ids if facade.keys.training_certification(i) == victim}
    assert len(seen) == len(set(seen))
    assert set(seen) == all_ids - gone


def test_without_the_read_function_the_figures_come_from_plain_commands(
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    """Nodes that refuse the read function (a read-only user where nobody loaded it, or nodes at
    their maxmemory) get the same reads as plain commands, with the same answer."""
    facade = ta.TrainingAnalytics(cluster_client, clock=_clock)
    _record(facade, HISTORY[:1500])
    expected = facade.get_credential_claim_analytics()
    op = ta.credentials.get_credential_claim_analytics(facade.context)
    scripted = next(op)
    assert isinstance(scripted, Batch) and isinstance(scripted.calls[0], ScriptCall)
    plain = op.throw(ta.CodeUnavailableError("the nodes may not load code"))
    assert isinstance(plain, Batch) and len(plain.calls) == 11 * facade.keys.cert_buckets
    assert not any(isinstance(call, ScriptCall) for call in plain.calls)
    with pytest.raises(StopIteration) as done:
        op.send(execute_cluster(cluster_client, plain))
    assert done.value.value == expected


# --- pure helpers ----------------------------------------------------------------------------


def test_the_window_follows_what_the_page_still_needs() -> None:
    assert next_window(16, 3, False, 40, 10, 3) == 3  # stopped inside a bucket
    assert next_window(16, 1, False, 40, 10, 1) == 2
    assert next_window(16, 16, True, 40, 0, 16) == 32  # nothing found yet: doubled
    assert next_window(16, 16, True, 40, 10, 16) == 128  # 0.625 a bucket: 64 more, twice
    assert next_window(64, 16, True, 2, 48, 16) == 128


def test_figures_sum_field_by_field() -> None:
    one = CertificateFigures(10, 4, 3, 2, 1, 1, 1, 2, 0, 5, 7_200_000, 4)
    two = CertificateFigures(5, 1, 2, 1, 1, 0, 1, 1, 1, 3, 3_600_000, 2)
    total = sum_figures([one, two, CertificateFigures()])
    assert total == CertificateFigures(15, 5, 5, 3, 2, 1, 2, 3, 1, 8, 10_800_000, 6)
    assert sum_figures([]) == CertificateFigures()
    stats = stats_from_figures(total)
    assert (stats.issued, stats.claimed, stats.pending, stats.expired, stats.revoked) == (
        4,
        3,
        4,
        6,
        2,
    )
    claims = claim_analytics_from_figures(total)
    assert claims.total_issued == 15 and claims.total_claimed == 8
    assert claims.claim_rate == 53.33 and claims.average_claim_time_hours == 0.5
    assert claims.pending == 4 and claims.expiring_in_30_days == 4
    assert claim_analytics_from_figures(CertificateFigures()).average_claim_time_hours == 0


def test_merge_soonest_keeps_the_first_k_by_score_then_id() -> None:
    parts = [
        [(1.0, "b"), (5.0, "a")],
        [(1.0, "a"), (2.0, "z"), (9.0, "c")],
        [],
        [(5.0, "0")],
    ]
    assert merge_soonest(parts, 4) == ["a", "b", "z", "0"]
    assert merge_soonest(parts, 100) == ["a", "b", "z", "0", "a", "c"]
    assert merge_soonest([], 3) == []
    # Ties by member as the server orders them: by code point ("Z" < "a" < "é").
    assert merge_soonest([[(1.0, "é")], [(1.0, "a")], [(1.0, "Z")]], 3) == ["Z", "a", "é"]


def test_score_pairs_reads_both_protocols() -> None:
    assert score_pairs(["a", "1", "b", "2.5"]) == [(1.0, "a"), (2.5, "b")]
    assert score_pairs([["a", 1.0], ["b", 2.5]]) == [(1.0, "a"), (2.5, "b")]
    assert score_pairs([]) == []


def test_bucket_cursors_round_trip_and_refuse_what_they_did_not_make() -> None:
    for position in (BucketPosition(), BucketPosition(255, 2**64 - 1, "cert-9")):
        assert decode_bucket_cursor(encode_bucket_cursor(position), 256) == position
    assert encode_bucket_cursor(None) is None
    assert decode_bucket_cursor(None, 256) == BucketPosition()
    with pytest.raises(ta.InvalidInputError):
        decode_bucket_cursor(encode_bucket_cursor(BucketPosition(16)), 16)
    with pytest.raises(ta.InvalidInputError):
        decode_bucket_cursor(pages.encode_cursor({"scan": 0, "after": None}), 256)


def test_following_goes_through_the_batch_then_the_buckets() -> None:
    assert following(BucketPosition(3, 0, "x"), 17, 8) == BucketPosition(3, 17)
    assert following(BucketPosition(3, 17, "x"), 0, 8) == BucketPosition(4)
    assert following(BucketPosition(7, 5), 0, 8) is None
