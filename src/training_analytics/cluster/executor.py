"""The executors on a Redis Cluster: a batch split by node, each node's part run by the
single-server exchange, replies put back in order.

redis-py's cluster clients do not fit the batches the core yields: ``RedisCluster.fcall`` asks
the server ``COMMAND GETKEYS`` (twice) to route every call, and its pipelines refuse EVALSHA
(DESIGN.md section 11). So the executor routes each call itself, by the CRC16 slot of its
first key (a script call's first key, a plain command's first argument: every command the
core sends names its key first), to the primary that serves that slot in the client's slot
map. Each node's part goes out as one round trip through ``_exec.exchange`` /
``_exec.aexchange``, the same exchange a single server gets: FUNCTION LOAD on first use,
"function not found" (a node restarted, failed over, or flushed) reloaded there and only the
failed calls resent, the EVALSHA fallback, all per node. Keyless commands (PING) go to the
client's default node.

Redirections are followed for the calls that got them, the others keep their replies:
``MOVED`` updates the slot map (the slot's new owner) and resends the call there; ``ASK`` (a
slot being migrated whose keys are already on the target) sends ``ASKING`` and the call to the
target on one connection; ``TRYAGAIN`` (a call whose keys are half migrated: a write creating a
key in a slot being imported gets it until the slot is handed over) waits and resends, the wait
doubling up to about 4 s in all. A
node that does not answer raises StoreUnavailableError (the slot map is read again for the next
call, so a failover is picked up), never a hang beyond the client's socket timeouts.

The asyncio executor sends the nodes' parts concurrently (gathered); the sync one writes every
node's part, each on a connection of that node's pool, before it reads any, so the nodes work
side by side there too (a part that needs code loaded then goes the single server's slow way).
A ``Submit`` runs at once on a cluster (like the single-connection path of
``_exec._Submitted``): the import keeps its order per tag, and a batch is not pipelined behind
the previous one. A batch spanning nodes is atomic per call (per hash tag), not as a whole.
``_OnCluster`` / ``_AOnCluster`` are the transports through which ``_exec.run_on`` /
``arun_on`` (the single server's loops) drive an operation here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import (
    AskError,
    ClusterCrossSlotError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    TryAgainError,
)

from .._exec import _drive, _send, aexchange, arun_on, connection_exchange, exchange, run_on
from .._protocol import Batch, Call, Command, Op, ScriptCall
from .._wire import Commands, Mode, commands_for, finish, has_errors, translate, unencodable
from ..errors import ClusterUnsupportedError, StoreUnavailableError, TrainingAnalyticsError

__all__ = ["aexecute_cluster", "arun_on_cluster", "execute_cluster", "run_on_cluster"]

T = TypeVar("T")

#: Rounds of redirections one batch follows before giving up (a slot moving twice while a
#: batch is in flight needs two; a target without our code one more).
MAX_ROUNDS = 12
# TRYAGAIN (a call whose keys are half migrated) and CLUSTERDOWN (a failover under way) wait,
# doubling from 50 ms up to 0.5 s: about 4 s in all before the call is given up.
_FIRST_PAUSE, _LONGEST_PAUSE = 0.05, 0.5
# Commands without a key: the default node answers them, unless the command names its node
# (``Command.node``: a per-node SCAN of export, reindex, migrate).
_KEYLESS = frozenset({"PING", "ECHO", "TIME", "INFO", "SCAN", "CLUSTER"})

# How each node runs our code (functions, scripts, legacy), by node name ("host:port").
_MODES: dict[str, Mode] = {}


def _key(call: Call) -> str | bytes | None:
    if isinstance(call, ScriptCall):
        return call.keys[0] if call.keys else None
    args = call.args
    if len(args) < 2 or str(args[0]).upper() in _KEYLESS:
        return None
    key = args[1]
    return key if isinstance(key, str | bytes) else str(key)


def _redirected(reply: Any) -> bool:
    return isinstance(reply, AskError | TryAgainError | ClusterDownError)


def _unroutable(reply: Any) -> Any:
    """A cluster reply that no resend cures, as the error the caller should see."""
    if isinstance(reply, ClusterCrossSlotError):
        return ClusterUnsupportedError(
            "this operation's keys lie in several hash slots, which a cluster cannot serve in "
            "one command (each call of an operation must keep its keys under one hash tag)"
        )
    if isinstance(reply, AskError | TryAgainError | ClusterDownError):
        return StoreUnavailableError(
            f"the cluster kept redirecting a call ({type(reply).__name__}: {reply}); "
            "it was not applied"
        )
    return reply


def _asked(call: Call) -> tuple[Call, ...]:
    return (Command(("ASKING",)), call)


class _Plan:
    """One batch's calls, their replies so far, and the calls still to send."""

    def __init__(self, calls: Sequence[Call]) -> None:
        self.calls = calls
        self.replies: list[Any] = [None] * len(calls)
        self.todo = list(range(len(calls)))
        self.ask: dict[int, tuple[str, int]] = {}
        self.waits = 0

    def settle(self, indices: Sequence[int], replies: list[Any], asked: bool) -> None:
        if asked:  # [ASKING, call] pairs: the call's replies
            replies = replies[1::2]
        for index, reply in zip(indices, replies, strict=True):
            self.replies[index] = reply

    def next_round(self) -> tuple[list[Any], float]:
        """Plan the resends: the MOVED errors to update the slot map with, and how long to
        wait first (TRYAGAIN / CLUSTERDOWN), 0 for none."""
        self.todo = [i for i in self.todo if _redirected(self.replies[i])]
        asked, self.ask = self.ask, {}
        moves = []
        wait = False
        for i in self.todo:
            reply = self.replies[i]
            if isinstance(reply, MovedError):
                moves.append(reply)
            elif isinstance(reply, AskError):
                self.ask[i] = (reply.host, reply.port)
            else:
                wait = True
                if i in asked:  # TRYAGAIN on the target of an ASK: ask it again
                    self.ask[i] = asked[i]
        if not wait:
            return moves, 0.0
        pause = min(_FIRST_PAUSE * 2**self.waits, _LONGEST_PAUSE)
        self.waits += 1
        return moves, pause

    def result(self, decoded: bool) -> list[Any]:
        return finish([_unroutable(reply) for reply in self.replies], decoded)


def _parts(
    plan: _Plan, node_of: Callable[[Call], Any], asked_node: Callable[[tuple[str, int]], Any]
) -> list[tuple[Any, list[int], bool]]:
    """(node, call indices, asked) per node: plain calls and ASK resends go apart."""
    groups: dict[tuple[str, bool], tuple[Any, list[int], bool]] = {}
    for i in plan.todo:
        where = plan.ask.get(i)
        node = node_of(plan.calls[i]) if where is None else asked_node(where)
        asked = where is not None
        group = groups.get((node.name, asked))
        if group is None:
            group = groups[(node.name, asked)] = (node, [], asked)
        group[1].append(i)
    return list(groups.values())


def _part_calls(plan: _Plan, indices: list[int], asked: bool) -> list[Call]:
    if not asked:
        return [plan.calls[i] for i in indices]
    return [call for i in indices for call in _asked(plan.calls[i])]


def _no_node(exc: RedisClusterException) -> StoreUnavailableError:
    """A slot no node serves in the client's map (a primary down, no replica promoted)."""
    return StoreUnavailableError(f"no cluster node serves a slot this call needs: {exc}")


class _AtOnce:
    """A cluster transport's submitted batches: each run when submitted, its outcome kept
    under its ticket until the operation asks for it."""

    __slots__ = ("done", "tickets")

    def __init__(self) -> None:
        self.done: dict[int, list[Any] | TrainingAnalyticsError] = {}
        self.tickets = 0

    def _settle(self, outcome: list[Any] | TrainingAnalyticsError) -> int:
        ticket = self.tickets
        self.tickets += 1
        self.done[ticket] = outcome
        return ticket

    def _take(self, ticket: int) -> list[Any]:
        outcome = self.done.pop(ticket)
        if isinstance(outcome, TrainingAnalyticsError):
            raise outcome
        return outcome


def _lost(node_name: str, error: TrainingAnalyticsError) -> TrainingAnalyticsError:
    if isinstance(error, StoreUnavailableError):
        return StoreUnavailableError(
            f"cluster node {node_name} did not answer ({error}); calls sent to other nodes in "
            "the same batch may have been applied"
        )
    return error


# --- sync ----------------------------------------------------------------------------------------


def _named_node(found: Any, name: str) -> Any:
    if found is None:
        raise StoreUnavailableError(
            f"cluster node {name} is not a node of this cluster any more (its slots moved or "
            "it failed over); start the scan again"
        )
    return found


def _node_of(client: redis.cluster.RedisCluster, call: Call) -> Any:
    cluster: Any = client  # redis-py's sync cluster client is untyped here
    if isinstance(call, Command) and call.node is not None:
        return _named_node(cluster.get_node(node_name=call.node), call.node)
    key = _key(call)
    if key is None:
        return cluster.get_default_node()
    return cluster.nodes_manager.get_node_from_slot(cluster.keyslot(key))


def _asked_node(client: redis.cluster.RedisCluster, where: tuple[str, int]) -> Any:
    cluster: Any = client
    node = cluster.get_node(host=where[0], port=where[1])
    if node is None:  # a node the map does not know yet
        _refresh(client)
        node = cluster.get_node(host=where[0], port=where[1])
        if node is None:
            raise StoreUnavailableError("the cluster redirected a call to an unknown node")
    return node


def _refresh(client: redis.cluster.RedisCluster) -> None:
    """Read the slot map again (after a node failed to answer: perhaps it failed over)."""
    # The error being raised says the store is unavailable; the next call reads the map again.
    with contextlib.suppress(redis.exceptions.RedisError, RedisClusterException, OSError):
        client.nodes_manager.initialize()


def _send_part(
    client: redis.cluster.RedisCluster, node: Any, calls: list[Call]
) -> tuple[list[Any], bool]:
    node_client = client.get_redis_connection(node)
    mode = _MODES.get(node.name, "functions")
    replies, now = exchange(partial(_send, node_client), calls, mode)
    if now != mode:
        _MODES[node.name] = now
    decoded = bool(node_client.connection_pool.connection_kwargs.get("decode_responses", False))
    return replies, decoded


class _Wire:
    """One node's part of a batch sent on a connection of its own, read after every node's
    part was written: the nodes work side by side, as under asyncio."""

    __slots__ = ("calls", "client", "commands", "connection", "mode", "node", "read")

    def __init__(self, client: redis.cluster.RedisCluster, node: Any, calls: list[Call]) -> None:
        self.node, self.calls = node, calls
        self.client: redis.Redis = client.get_redis_connection(node)
        self.mode = _MODES.get(node.name, "functions")
        self.commands = commands_for(calls, self.mode)
        self.connection: Any = None
        self.read = False

    def replies(self) -> list[Any]:
        callbacks = self.client.response_callbacks
        replies: list[Any] = []
        for command in self.commands:
            try:
                reply = self.connection.read_response()
            except redis.exceptions.ResponseError as exc:
                replies.append(exc)
                continue
            name = command[0]
            if name in callbacks:
                reply = callbacks[name](reply)
            replies.append(reply)
        self.read = True
        return replies

    def close(self) -> None:
        if self.connection is None:
            return
        if not self.read:  # replies left unread must not reach the next user
            self.connection.disconnect()
        self.client.connection_pool.release(self.connection)

    def finish(self, replies: list[Any]) -> tuple[list[Any], bool]:
        """Code the node lacked loaded, the failed calls resent (the single server's way)."""
        mode = self.mode
        if has_errors(replies):
            try:
                replies, mode = _drive(partial(_send, self.client), self.calls, replies, mode)
            except redis.exceptions.RedisError as exc:
                raise translate(exc) from exc
            if mode != self.mode:
                _MODES[self.node.name] = mode
        kwargs = self.client.connection_pool.connection_kwargs
        return replies, bool(kwargs.get("decode_responses", False))


def _send_parts(
    client: redis.cluster.RedisCluster, parts: list[tuple[Any, list[Call]]]
) -> list[tuple[list[Any], bool]]:
    """Each node's calls in one round trip, all nodes written before any is read."""
    if len(parts) == 1:
        node, calls = parts[0]
        try:
            return [_send_part(client, node, calls)]
        except TrainingAnalyticsError as exc:
            raise _lost(node.name, exc) from exc
    wires = [_Wire(client, node, calls) for node, calls in parts]
    current = wires[0]
    try:
        # Every part packed before anything is sent: text that cannot be encoded refuses the
        # whole batch with nothing sent.
        packed = []
        for wire in wires:
            current = wire
            wire.connection = wire.client.connection_pool.get_connection()
            packed.append(wire.connection.pack_commands(wire.commands))
        for wire, data in zip(wires, packed, strict=True):
            current = wire
            wire.connection.send_packed_command(data)
        read = []
        for wire in wires:
            current = wire
            read.append(wire.replies())
        done = []
        for wire, replies in zip(wires, read, strict=True):
            current = wire
            done.append(wire.finish(replies))
        return done
    except UnicodeEncodeError as exc:
        raise unencodable(exc) from exc
    except redis.exceptions.RedisError as exc:
        raise _lost(current.node.name, translate(exc)) from exc
    except TrainingAnalyticsError as exc:
        raise _lost(current.node.name, exc) from exc
    finally:
        for wire in wires:
            wire.close()


def execute_cluster(client: redis.cluster.RedisCluster, batch: Batch) -> list[Any]:
    """Run a batch on a sync cluster client: its replies in order, the first error raised."""
    plan = _Plan(batch.calls)
    decoded = False
    for _ in range(MAX_ROUNDS):
        try:
            parts = _parts(plan, partial(_node_of, client), partial(_asked_node, client))
        except RedisClusterException as exc:
            _refresh(client)
            raise _no_node(exc) from exc
        try:
            sent = _send_parts(
                client,
                [(node, _part_calls(plan, indices, asked)) for node, indices, asked in parts],
            )
        except StoreUnavailableError:
            _refresh(client)
            raise
        for (_, indices, asked), (replies, node_decodes) in zip(parts, sent, strict=True):
            plan.settle(indices, replies, asked)
            decoded = node_decodes
        moves, pause = plan.next_round()
        if not plan.todo:
            break
        for moved in moves:
            client.nodes_manager.move_slot(moved)
        if pause:
            time.sleep(pause)
    return plan.result(decoded)


class _OnCluster(_AtOnce):
    """A sync cluster client as ``_exec.run_on``'s transport."""

    __slots__ = ("client",)

    def __init__(self, client: redis.cluster.RedisCluster) -> None:
        super().__init__()
        self.client = client

    def execute(self, batch: Batch) -> list[Any]:
        return execute_cluster(self.client, batch)

    def submit(self, batch: Batch) -> int:
        outcome: list[Any] | TrainingAnalyticsError
        try:
            outcome = execute_cluster(self.client, batch)
        except TrainingAnalyticsError as exc:
            outcome = exc
        return self._settle(outcome)

    def result(self, ticket: int) -> list[Any]:
        return self._take(ticket)

    def close(self) -> None:
        """Nothing to read: every batch was read when it ran."""


def run_on_cluster(op: Op[T], client: redis.cluster.RedisCluster) -> T:
    """``_exec.run`` on a cluster client: submitted batches run at once."""
    return run_on(op, _OnCluster(client))


# --- asyncio -------------------------------------------------------------------------------------


async def _node_exchange(node: redis.asyncio.cluster.ClusterNode, commands: Commands) -> list[Any]:
    """One round trip on a connection of the node's own pool (the cluster client's, closed
    with it): the commands in one write, replies parsed by the client's callbacks, errors the
    server answers in place."""
    connection = node.acquire_connection()
    try:
        return await connection_exchange(connection, node.response_callbacks, commands)
    except BaseException:
        # Replies may be left unread: the connection must not serve anyone else.
        await connection.disconnect()
        raise
    finally:
        node.release(connection)


def _anode_of(client: redis.asyncio.cluster.RedisCluster, call: Call) -> Any:
    if isinstance(call, Command) and call.node is not None:
        return _named_node(client.get_node(node_name=call.node), call.node)
    key = _key(call)
    if key is None:
        return client.get_default_node()
    return client.nodes_manager.get_node_from_slot(client.keyslot(key))


async def _arefresh(client: redis.asyncio.cluster.RedisCluster) -> None:
    with contextlib.suppress(redis.exceptions.RedisError, RedisClusterException, OSError):
        await client.nodes_manager.initialize()


async def _asend_part(node: redis.asyncio.cluster.ClusterNode, calls: list[Call]) -> list[Any]:
    mode = _MODES.get(node.name, "functions")
    replies, now = await aexchange(partial(_node_exchange, node), calls, mode)
    if now != mode:
        _MODES[node.name] = now
    return replies


async def aexecute_cluster(client: redis.asyncio.cluster.RedisCluster, batch: Batch) -> list[Any]:
    """``execute_cluster`` for asyncio: the nodes' parts concurrently."""
    try:
        await client.initialize()
    except (redis.exceptions.RedisError, RedisClusterException, OSError) as exc:
        raise StoreUnavailableError(f"the cluster cannot be reached: {exc}") from exc
    plan = _Plan(batch.calls)
    decoded = False
    for _ in range(MAX_ROUNDS):
        unknown: list[tuple[str, int]] = [
            where for where in plan.ask.values() if client.get_node(*where) is None
        ]
        if unknown:
            await _arefresh(client)

        def asked_node(where: tuple[str, int]) -> Any:
            node = client.get_node(host=where[0], port=where[1])
            if node is None:
                raise StoreUnavailableError("the cluster redirected a call to an unknown node")
            return node

        try:
            parts = _parts(plan, partial(_anode_of, client), asked_node)
        except RedisClusterException as exc:
            await _arefresh(client)
            raise _no_node(exc) from exc
        outcomes = await asyncio.gather(
            *(
                _asend_part(node, _part_calls(plan, indices, asked))
                for node, indices, asked in parts
            ),
            return_exceptions=True,
        )
        failure: BaseException | None = None
        for (node, indices, asked), outcome in zip(parts, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if failure is None:
                    failure = outcome
                    lost_node = node.name
                continue
            decoded = bool(node.connection_kwargs.get("decode_responses", False))
            plan.settle(indices, outcome, asked)
        if failure is not None:
            if isinstance(failure, StoreUnavailableError):
                await _arefresh(client)
            if isinstance(failure, TrainingAnalyticsError):
                raise _lost(lost_node, failure) from failure
            raise failure
        moves, pause = plan.next_round()
        if not plan.todo:
            break
        for moved in moves:
            await client.nodes_manager.move_slot(moved)
        if pause:
            await asyncio.sleep(pause)
    return plan.result(decoded)


class _AOnCluster(_AtOnce):
    """``_OnCluster`` for asyncio."""

    __slots__ = ("client",)

    def __init__(self, client: redis.asyncio.cluster.RedisCluster) -> None:
        super().__init__()
        self.client = client

    async def execute(self, batch: Batch) -> list[Any]:
        return await aexecute_cluster(self.client, batch)

    async def submit(self, batch: Batch) -> int:
        outcome: list[Any] | TrainingAnalyticsError
        try:
            outcome = await aexecute_cluster(self.client, batch)
        except TrainingAnalyticsError as exc:
            outcome = exc
        return self._settle(outcome)

    async def result(self, ticket: int) -> list[Any]:
        return self._take(ticket)

    async def close(self) -> None:
        """Nothing to read: every batch was read when it ran."""


async def arun_on_cluster(op: Op[T], client: redis.asyncio.cluster.RedisCluster) -> T:
    """``_exec.arun`` on a cluster client: submitted batches run at once."""
    return await arun_on(op, _AOnCluster(client))
