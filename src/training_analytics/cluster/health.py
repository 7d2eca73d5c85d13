"""A cluster's health, for readiness probes: ``CLUSTER INFO`` asked of every node the client
knows, each on its own connection, so one node that does not answer is counted, not fatal.

This is connection-level (like ``server.ping``), not an operation of the sans-I/O core: it
addresses nodes, not keys, and a core operation cannot name a node.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import RedisClusterException

from ..errors import ClusterModeError, StoreUnavailableError
from ..types import SeedModel

__all__ = ["ClusterHealth", "async_cluster_health", "cluster_health", "is_cluster_client"]


class ClusterHealth(SeedModel):
    """What ``readyz`` reports for a cluster."""

    state: str
    """``ok`` when every node that answered reports ``cluster_state:ok``, else ``fail``."""
    nodes: int
    """Nodes the client knows (primaries and replicas)."""
    reachable: int
    """Nodes that answered."""
    unreachable: list[str]
    """``host:port`` of the nodes that did not."""

    @property
    def ok(self) -> bool:
        return self.state == "ok" and self.reachable > 0


def is_cluster_client(client: object) -> bool:
    """Whether ``client`` is redis-py's sync or asyncio cluster client."""
    return isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster)


def _state(reply: Any) -> str:
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "cluster_state":
            return value.strip()
    return "unknown"


def _summary(addresses: list[str], replies: list[Any]) -> ClusterHealth:
    states = [_state(r) for r in replies if not isinstance(r, BaseException)]
    unreachable = [
        a for a, r in zip(addresses, replies, strict=True) if isinstance(r, BaseException)
    ]
    state = "ok" if states and all(s == "ok" for s in states) else "fail"
    return ClusterHealth(
        state=state, nodes=len(addresses), reachable=len(states), unreachable=unreachable
    )


def _not_a_cluster(exc: RedisClusterException) -> ClusterModeError | StoreUnavailableError:
    if "cluster mode is not enabled" in str(exc).lower():
        return ClusterModeError(
            "the server is not a cluster node (cluster mode is off); use a redis:// URL for a "
            "single server"
        )
    return StoreUnavailableError(f"cannot reach the cluster: {exc}")


def cluster_health(client: redis.cluster.RedisCluster) -> ClusterHealth:
    """Ask every node the client knows for ``CLUSTER INFO``."""
    nodes: list[redis.cluster.ClusterNode] = client.get_nodes()  # type: ignore[no-untyped-call]
    replies: list[Any] = []
    for node in nodes:
        connection = node.redis_connection
        try:
            if connection is None:
                raise redis.ConnectionError("no connection")
            send: Any = connection.execute_command
            replies.append(send("CLUSTER", "INFO"))
        except redis.RedisError as exc:
            replies.append(exc)
    return _summary([node.name for node in nodes], replies)


async def async_cluster_health(client: redis.asyncio.cluster.RedisCluster) -> ClusterHealth:
    """:func:`cluster_health` for the asyncio client; the nodes are asked side by side. Raises
    ClusterModeError when the seed is not a cluster node, StoreUnavailableError when no node
    can be reached to learn the cluster's layout."""
    try:
        await client.initialize()
    except RedisClusterException as exc:
        raise _not_a_cluster(exc) from exc
    except redis.RedisError as exc:
        raise StoreUnavailableError(f"cannot reach the cluster: {exc}") from exc
    nodes = client.get_nodes()

    async def ask(node: redis.asyncio.cluster.ClusterNode) -> Any:
        send: Any = node.execute_command
        return await send("CLUSTER", "INFO")

    replies = await asyncio.gather(*(ask(node) for node in nodes), return_exceptions=True)
    for reply in replies:
        if isinstance(reply, BaseException) and not isinstance(reply, redis.RedisError | OSError):
            raise reply
    return _summary([node.name for node in nodes], list(replies))
