"""Maintenance on a real cluster (issue 14, "maint"): the layout record and its check, export
and import, each compared with the suite's single server, sync and asyncio.

The layout record (``training:meta:layout:{:meta}``) is written by a cluster store's first
write that changes it; a facade with another certificate bucket count is then refused before
it writes anything. The single-server layout has no record (it is the older system's).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster

import training_analytics as ta
from training_analytics.cluster.local import ClusterControl

from .factories import NOW, Factory

FacadeMaker = Callable[..., Any]


def _clock() -> Any:
    return NOW


@pytest.fixture(params=["sync", "async"])
def make_cluster_facade(
    request: pytest.FixtureRequest,
    cluster: ClusterControl,
    cluster_client: redis.cluster.RedisCluster,
) -> Iterator[FacadeMaker]:
    """Build facades on the flushed cluster, sync or asyncio (called like the sync one)."""
    loops: list[asyncio.AbstractEventLoop] = []
    closers: list[Callable[[], None]] = []

    def build(**options: Any) -> Any:
        options.setdefault("clock", _clock)
        if request.param == "sync":
            return ta.TrainingAnalytics(cluster_client, **options)
        loop = asyncio.new_event_loop()
        loops.append(loop)
        seed = cluster.nodes()[0]
        aclient = redis.asyncio.cluster.RedisCluster(
            host=seed.host, port=seed.port, password=cluster.password
        )
        facade = ta.AsyncTrainingAnalytics(aclient, **options)
        closers.append(lambda: loop.run_until_complete(aclient.aclose()))

        class View:
            keys = facade.keys

            def __getattr__(self, name: str) -> Any:
                method = getattr(facade, name)
                return lambda *a, **k: loop.run_until_complete(method(*a, **k))

        return View()

    yield build
    for close in closers:
        close()
    for loop in loops:
        loop.close()


def _dump(client: redis.cluster.RedisCluster) -> dict[str, Any]:
    """Every key of every primary with its type and value (what "nothing written" compares)."""
    found: dict[str, Any] = {}
    for key in client.scan_iter(target_nodes=redis.cluster.RedisCluster.PRIMARIES):
        kind = client.type(key)
        if kind == "string":
            found[key] = client.get(key)
        elif kind == "hash":
            found[key] = client.hgetall(key)
        elif kind == "set":
            found[key] = sorted(client.smembers(key))
        elif kind == "zset":
            found[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            found[key] = kind
    return found


# --- (a) the layout record ----------------------------------------------------------------------


def test_the_first_write_records_the_layout(
    make_cluster_facade: FacadeMaker, cluster_client: redis.cluster.RedisCluster
) -> None:
    facade = make_cluster_facade()
    assert facade.get_recorded_layout() is None
    # A refused write records nothing.
    with pytest.raises(ta.CertificationNotFoundError):
        facade.update_certification_status("nope", "claimed")
    assert cluster_client.get("training:meta:layout:{:meta}") is None
    facade.record_enrollment("u1", "c1")
    assert facade.get_recorded_layout() == {"layout": "cluster", "certBuckets": 256}
    assert json.loads(cluster_client.get("training:meta:layout:{:meta}")) == {
        "layout": "cluster",
        "certBuckets": 256,
    }
    assert cluster_client.get("training:meta:time-zone:{:meta}") == "UTC"


def test_another_bucket_count_is_refused_and_writes_nothing(
    make_cluster_facade: FacadeMaker, cluster_client: redis.cluster.RedisCluster
) -> None:
    make_cluster_facade().record_enrollment("u1", "c1")
    before = _dump(cluster_client)
    other = make_cluster_facade(cert_buckets=16)
    cert = {
        "id": "cert-1",
        "userId": "u1",
        "courseId": "c1",
        "courseName": {"en": "C1"},
        "issuedAt": "2025-06-01T10:00:00.000Z",
        "status": "issued",
        "score": 90,
    }
    with pytest.raises(ta.LayoutMismatchError, match="256 certificate buckets"):
        other.issue_training_certification(cert)
    with pytest.raises(ta.LayoutMismatchError):
        other.record_many([ta.EnrollmentEvent(user_id="u2", course_id="c1")])
    with pytest.raises(ta.LayoutMismatchError):
        other.record_each([{"kind": "enrollment", "userId": "u2", "courseId": "c1"}])
    assert _dump(cluster_client) == before
    # The store's own bucket count writes.
    assert make_cluster_facade().issue_training_certification(cert) is not None


def test_a_corrupt_layout_record_is_a_store_error(
    make_cluster_facade: FacadeMaker, cluster_client: redis.cluster.RedisCluster
) -> None:
    cluster_client.set("training:meta:layout:{:meta}", "not json")
    with pytest.raises(ta.StoreError, match="layout record"):
        make_cluster_facade().record_enrollment("u1", "c1")
    assert cluster_client.scard("training:enrollments:{c1}") == 0


def test_the_single_server_layout_records_nothing(
    make_analytics: Factory, client: redis.Redis
) -> None:
    analytics = make_analytics()
    analytics.record_enrollment("u1", "c1")
    assert analytics.get_recorded_layout() is None
    assert not [key for key in client.scan_iter("training:meta:layout*")]
