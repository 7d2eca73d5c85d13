"""What differs between the suite's stores: one server, or a cluster (``TEST_STORE=cluster``).

``store_client`` gives a client of the right kind for the store's URL (a ``redis+cluster://``
URL gives a cluster client, whose SCAN and FLUSHDB cover every primary). The markers say why a
test runs on one server only; conftest.py deselects them when the store is a cluster.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from training_analytics.cluster.urls import is_cluster_url, node_url

RAW_KEYS = pytest.mark.single_server(
    reason="reads or writes raw keys under the single-server layout's names (the older "
    "system's), or keys that layout alone has (global day counters, the seed's caches)"
)
SEED_DATA = pytest.mark.single_server(
    reason="data as the older system writes it: that system knows the single-server layout "
    "only (a cluster store is filled from it by migrate, not written by it)"
)
ONE_SERVER = pytest.mark.single_server(
    reason="configures one server itself (ACL users, maxmemory, AOF, FUNCTION FLUSH on it) or "
    "drives the single server's executor on its own connection (pipelined stream, a killed "
    "connection, round trips counted on its pool); test_cluster_writes.py and "
    "test_cluster_faults.py test the cluster's counterparts"
)


def store_client(url: str, **options: Any) -> Any:
    """A sync client on the store ``url`` names: ``redis.Redis`` or ``RedisCluster``."""
    if is_cluster_url(url):
        return redis.cluster.RedisCluster.from_url(node_url(url), **options)
    return redis.Redis.from_url(url, **options)


def async_store_client(url: str, **options: Any) -> Any:
    """An asyncio client on the store ``url`` names."""
    if is_cluster_url(url):
        return redis.asyncio.cluster.RedisCluster.from_url(node_url(url), **options)
    return redis.asyncio.Redis.from_url(url, **options)
