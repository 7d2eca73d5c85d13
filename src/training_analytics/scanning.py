"""SCAN across a store: one server, or every primary of a cluster (sans-I/O).

A cluster's keyspace is split over its primaries, and SCAN walks one node's: a scan of the
whole store walks each primary in turn (``Command.node`` routes it there; the cluster executor
refuses a node the cluster no longer has). The position is plain data, ``(nodes, cursor)``:
the primaries still to walk, the first one's SCAN cursor, so a scan can stop after any page
and go on later (SCAN cursors are stateless on the server). A topology change between pages
(slots moved) may then miss or repeat keys, as SCAN itself does for keys that move; a position
naming a primary the cluster no longer has starts the walk again over today's primaries
(repeating keys, never missing them). Everything export and ``migrate`` write is idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._context import Context
from ._protocol import Arg, Batch, Op, on_node, single
from .errors import StoreUnavailableError

__all__ = ["primaries", "scan_page"]


def primaries(ctx: Context) -> Op[list[str]]:
    """The cluster's primaries as ``host:port`` (the names the executor routes ``Command.node``
    by), sorted; ``[""]`` on a single server (its one keyspace)."""
    if not ctx.keys.cluster:
        return [""]
    slots = yield from single("CLUSTER", "SLOTS")
    return sorted({_name(entry[2]) for entry in slots})


def _name(node: Sequence[Any]) -> str:
    return f"{node[0]}:{node[1]}"


def scan_page(
    ctx: Context, nodes: list[str] | None, cursor: str, *args: Arg
) -> Op[tuple[list[str], list[str] | None, str]]:
    """One SCAN page (``args``: MATCH, COUNT, TYPE...) at position ``(nodes, cursor)``; start
    with ``(None, "0")`` (the primaries are asked for first). Returns the page's keys and the
    next position; its ``nodes`` is empty when the scan is complete."""
    if nodes is None:
        nodes = yield from primaries(ctx)
    if not nodes:
        return [], [], "0"
    node = nodes[0]
    if node:
        try:
            replies = (yield Batch((on_node(node, "SCAN", cursor, *args),)))[0]
        except StoreUnavailableError:
            current = yield from primaries(ctx)
            if node in current:
                raise  # the node is down, not gone
            # The topology changed since this position was taken (a failover, a node removed):
            # the walk starts again over today's primaries. Keys are seen again, which every
            # user of a scan tolerates (export and migrate apply idempotent records).
            return [], current, "0"
    else:
        replies = yield from single("SCAN", cursor, *args)
    following, keys = replies
    following = str(following)  # redis-py parses some cursors to int
    if following == "0":
        return list(keys), nodes[1:], "0"
    return list(keys), nodes, following
