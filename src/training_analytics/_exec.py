"""The two executors: drive a sans-I/O operation on a sync or an asyncio redis-py client.

Both share everything but the waiting: the commands, the exchange that loads code the server
lacks, reply decoding and error translation live in ``_wire``, and submitted batches follow
``_pipelined``; ``run`` and ``arun`` perform the same steps, with and without ``await``.

One loop per flavour drives every operation (``run_on`` / ``arun_on``): it hands each request
to a transport (``Transport`` / ``ATransport``: execute a batch, submit one, give a submitted
batch's result, close) and sends the reply back, or throws the typed error in. The single
server's transport is ``_Submitted`` / ``_ASubmitted`` here, a cluster's is in
``cluster.executor``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from functools import partial
from typing import Any, Final, Protocol, TypeVar

import redis
import redis.asyncio

from ._pipelined import Action, Pipelined, Send
from ._protocol import Batch, Call, Op, Submit
from ._wire import (
    MODES,
    Commands,
    Mode,
    commands_for,
    decodes,
    finish,
    has_errors,
    load_and_retry,
    translate,
    unencodable,
)
from .errors import StoreUnavailableError, TrainingAnalyticsError

T = TypeVar("T")
R = TypeVar("R")


class Transport(Protocol):
    """Where ``run_on`` sends an operation's requests (sync)."""

    def execute(self, batch: Batch) -> list[Any]:
        """``batch``'s replies; its first error raised, typed."""

    def submit(self, batch: Batch) -> int:
        """Start ``batch``; a ticket for ``result``."""

    def result(self, ticket: int) -> list[Any]:
        """A submitted batch's replies; its first error raised, typed."""

    def close(self) -> None:
        """The operation is over (finished or failed): nothing it started is left unread."""


class ATransport(Protocol):
    """``Transport`` for asyncio."""

    async def execute(self, batch: Batch) -> list[Any]: ...

    async def submit(self, batch: Batch) -> int: ...

    async def result(self, ticket: int) -> list[Any]: ...

    async def close(self) -> None: ...


# --- sync ----------------------------------------------------------------------------------------


def _send(client: redis.Redis, commands: Commands) -> list[Any]:
    if len(commands) == 1:
        send: Callable[..., Any] = client.execute_command
        try:
            return [send(*commands[0])]
        except redis.exceptions.ResponseError as exc:
            return [exc]
    pipe = client.pipeline(transaction=False)
    queue: Callable[..., Any] = pipe.execute_command
    for command in commands:
        queue(*command)
    return list(pipe.execute(raise_on_error=False))


Sender = Callable[[Commands], list[Any]]
ASender = Callable[[Commands], Awaitable[list[Any]]]


def _drive(
    send: Sender, calls: Sequence[Call], replies: list[Any], mode: Mode
) -> tuple[list[Any], Mode]:
    exchange = load_and_retry(calls, replies, mode)
    try:
        commands = next(exchange)
        while True:
            commands = exchange.send(send(commands))
    except StopIteration as done:
        result: tuple[list[Any], Mode] = done.value
        return result


def exchange(send: Sender, calls: Sequence[Call], mode: Mode) -> tuple[list[Any], Mode]:
    """Send ``calls`` through ``send`` (one round trip, more if code must be loaded): their
    replies, errors in place as exception objects, and the mode to go on with. Connection
    errors raise typed; the cluster executor runs each node's part through here."""
    try:
        replies = send(commands_for(calls, mode))
        if has_errors(replies):  # perhaps code the server lacks: the slow path
            replies, mode = _drive(send, calls, replies, mode)
    except redis.exceptions.RedisError as exc:
        raise translate(exc) from exc
    except UnicodeEncodeError as exc:  # raised while packing: nothing was sent
        raise unencodable(exc) from exc
    return replies, mode


def execute(client: redis.Redis, batch: Batch) -> list[Any]:
    mode = MODES.of(client)
    replies, now = exchange(partial(_send, client), batch.calls, mode)
    if now != mode:
        MODES.set(client, now)
    return finish(replies, decodes(client))


class _Submissions:
    """What both executors keep for one operation's submitted batches (see ``_pipelined``): the
    pipelined state (made at the first ``Submit``: most operations submit nothing), the
    connection taken for it, and the error that broke that connection."""

    __slots__ = ("_state", "broken", "client", "connection")

    def __init__(self, client: redis.Redis | redis.asyncio.Redis) -> None:
        self.client = client
        self._state: Pipelined | None = None
        self.connection: Any = None
        self.broken: TrainingAnalyticsError | None = None

    @property
    def state(self) -> Pipelined:
        if self._state is None:
            self._state = Pipelined(MODES.of(self.client), decodes(self.client))
        return self._state

    def _submitted(self) -> Pipelined:
        assert self._state is not None, "Await before any Submit"
        return self._state

    def _check(self) -> None:
        if self.broken is not None:
            raise self.broken

    def _lost(self, exc: BaseException) -> TrainingAnalyticsError:
        """The connection failed with batches in flight: this and every later call fail."""
        error = translate(exc)
        if isinstance(error, StoreUnavailableError):
            error = StoreUnavailableError(
                f"{error}; batches sent before it may or may not have been applied"
            )
        self.broken = error
        return error

    def _performed(self) -> None:
        MODES.set(self.client, self.state.mode)


class _Submitted(_Submissions):
    """A sync server as ``run_on``'s transport: a batch executed on the client, submitted ones
    on one connection of the client's pool. A client bound to a single connection runs each
    batch when submitted."""

    __slots__ = ()
    client: redis.Redis

    def execute(self, batch: Batch) -> list[Any]:
        return execute(self.client, batch)

    def submit(self, batch: Batch) -> int:
        state = self.state
        if self.client.connection is None:
            return self._perform(state.submit(batch))
        outcome: list[Any] | TrainingAnalyticsError
        try:
            outcome = execute(self.client, batch)
        except TrainingAnalyticsError as exc:
            outcome = exc
        return state.settle(outcome)

    def result(self, ticket: int) -> list[Any]:
        return self._perform(self._submitted().result(ticket))

    def close(self) -> None:
        """Read what is still due, then give the connection back."""
        if self.connection is None:
            return
        try:
            if self.broken is None and not self.state.idle:
                self._perform(self.state.drain())
        except TrainingAnalyticsError:
            self.connection.disconnect()  # replies left unread must not reach the next user
        finally:
            self.client.connection_pool.release(self.connection)

    def _perform(self, steps: Generator[Action, Any, R]) -> R:
        self._check()
        try:
            action = next(steps)
            if self.connection is None:
                self.connection = self.client.connection_pool.get_connection()
            connection = self.connection
            while True:
                reply: Any = None
                if isinstance(action, Send):
                    connection.send_packed_command(connection.pack_commands(action.commands))
                else:
                    try:
                        reply = connection.read_response()
                    except redis.exceptions.ResponseError as exc:
                        reply = exc
                action = steps.send(reply)
        except StopIteration as done:
            result: R = done.value
            return result
        except redis.exceptions.RedisError as exc:
            error = self._lost(exc)
            if self.connection is not None:
                self.connection.disconnect()
            raise error from exc
        except UnicodeEncodeError as exc:  # raised while packing a Send: nothing was sent
            raise unencodable(exc) from exc
        finally:
            self._performed()


def run_on(op: Op[T], transport: Transport) -> T:
    """Drive ``op`` to completion on ``transport``: each request's reply sent back, a typed
    error thrown in (the operation may handle it), the transport closed at the end."""
    try:
        request = next(op)
        while True:
            try:
                reply: Any
                if isinstance(request, Batch):
                    reply = transport.execute(request)
                elif isinstance(request, Submit):
                    reply = transport.submit(request.batch)
                else:
                    reply = transport.result(request.ticket)
            except TrainingAnalyticsError as exc:
                request = op.throw(exc)
            else:
                request = op.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result
    finally:
        # Nothing this call started is left unread on a connection.
        transport.close()


def run(op: Op[T], client: redis.Redis) -> T:
    """Drive ``op`` to completion on a sync client (a cluster client: ``cluster.executor``)."""
    return run_on(op, _Submitted(client))


# --- asyncio -------------------------------------------------------------------------------------


async def _asend(client: redis.asyncio.Redis, commands: Commands) -> list[Any]:
    if client.connection is None and type(client).execute_command is _EXECUTE_COMMAND:
        return await _aexchange(client, commands)
    if len(commands) == 1:
        send: Callable[..., Awaitable[Any]] = client.execute_command
        try:
            return [await send(*commands[0])]
        except redis.exceptions.ResponseError as exc:
            return [exc]
    pipe = client.pipeline(transaction=False)
    queue: Callable[..., Any] = pipe.execute_command
    for command in commands:
        queue(*command)
    return list(await pipe.execute(raise_on_error=False))


_EXECUTE_COMMAND: Final = redis.asyncio.Redis.execute_command


async def connection_exchange(
    connection: Any, callbacks: Mapping[Any, Callable[..., Any]], commands: Commands
) -> list[Any]:
    """One round trip on an asyncio connection: the commands in one write, the replies read in
    order and parsed by ``callbacks`` (the client's), errors the server answers in place."""
    await connection.send_packed_command(connection.pack_commands(commands))
    replies: list[Any] = []
    for command in commands:
        try:
            reply = await connection.read_response()
        except redis.exceptions.ResponseError as exc:
            replies.append(exc)
            continue
        name = command[0]
        if name in callbacks:
            reply = callbacks[name](reply)
            if inspect.isawaitable(reply):
                reply = await reply
        replies.append(reply)
    return replies


async def _aexchange(client: redis.asyncio.Redis, commands: Commands) -> list[Any]:
    """What ``execute_command`` or a pipeline without MULTI does, on a pooled connection: the
    commands in one write, the replies read in order and parsed by the client's callbacks,
    errors the server answers returned in place, the whole exchange retried by the
    connection's retry policy (the connection dropped first). Without redis-py's per-command
    and per-pipeline machinery, which costs more CPU than the exchange (about 50 us for a
    round trip of six commands, a fifth of an HTTP analytics read)."""
    await client.initialize()
    pool = client.connection_pool
    callbacks = client.response_callbacks
    get: Callable[[], Awaitable[Any]] = pool.get_connection
    connection = await get()

    async def exchange() -> list[Any]:
        return await connection_exchange(connection, callbacks, commands)

    async def dropped(error: BaseException) -> None:
        await connection.disconnect()

    try:
        replies: list[Any] = await connection.retry.call_with_retry(exchange, dropped)
        return replies
    finally:
        await pool.release(connection)


async def _adrive(
    send: ASender, calls: Sequence[Call], replies: list[Any], mode: Mode
) -> tuple[list[Any], Mode]:
    exchange = load_and_retry(calls, replies, mode)
    try:
        commands = next(exchange)
        while True:
            commands = exchange.send(await send(commands))
    except StopIteration as done:
        result: tuple[list[Any], Mode] = done.value
        return result


async def aexchange(send: ASender, calls: Sequence[Call], mode: Mode) -> tuple[list[Any], Mode]:
    """``exchange`` for asyncio."""
    try:
        replies = await send(commands_for(calls, mode))
        if has_errors(replies):  # perhaps code the server lacks: the slow path
            replies, mode = await _adrive(send, calls, replies, mode)
    except redis.exceptions.RedisError as exc:
        raise translate(exc) from exc
    except UnicodeEncodeError as exc:  # raised while packing: nothing was sent
        raise unencodable(exc) from exc
    return replies, mode


async def aexecute(client: redis.asyncio.Redis, batch: Batch) -> list[Any]:
    mode = MODES.of(client)
    replies, now = await aexchange(partial(_asend, client), batch.calls, mode)
    if now != mode:
        MODES.set(client, now)
    return finish(replies, decodes(client))


class _ASubmitted(_Submissions):
    """``_Submitted`` for an asyncio client."""

    __slots__ = ()
    client: redis.asyncio.Redis

    async def execute(self, batch: Batch) -> list[Any]:
        return await aexecute(self.client, batch)

    async def submit(self, batch: Batch) -> int:
        state = self.state
        if self.client.connection is None:
            return await self._perform(state.submit(batch))
        outcome: list[Any] | TrainingAnalyticsError
        try:
            outcome = await aexecute(self.client, batch)
        except TrainingAnalyticsError as exc:
            outcome = exc
        return state.settle(outcome)

    async def result(self, ticket: int) -> list[Any]:
        return await self._perform(self._submitted().result(ticket))

    async def close(self) -> None:
        if self.connection is None:
            return
        try:
            if self.broken is None and not self.state.idle:
                await self._perform(self.state.drain())
        except TrainingAnalyticsError:
            await self.connection.disconnect()
        finally:
            await self.client.connection_pool.release(self.connection)

    async def _perform(self, steps: Generator[Action, Any, R]) -> R:
        self._check()
        try:
            action = next(steps)
            if self.connection is None:
                get: Callable[[], Awaitable[Any]] = self.client.connection_pool.get_connection
                self.connection = await get()
            connection = self.connection
            while True:
                reply: Any = None
                if isinstance(action, Send):
                    await connection.send_packed_command(connection.pack_commands(action.commands))
                else:
                    try:
                        reply = await connection.read_response()
                    except redis.exceptions.ResponseError as exc:
                        reply = exc
                action = steps.send(reply)
        except StopIteration as done:
            result: R = done.value
            return result
        except redis.exceptions.RedisError as exc:
            error = self._lost(exc)
            if self.connection is not None:
                await self.connection.disconnect()
            raise error from exc
        except UnicodeEncodeError as exc:  # raised while packing a Send: nothing was sent
            raise unencodable(exc) from exc
        finally:
            self._performed()


async def arun_on(op: Op[T], transport: ATransport) -> T:
    """``run_on`` for asyncio."""
    try:
        request = next(op)
        while True:
            try:
                reply: Any
                if isinstance(request, Batch):
                    reply = await transport.execute(request)
                elif isinstance(request, Submit):
                    reply = await transport.submit(request.batch)
                else:
                    reply = await transport.result(request.ticket)
            except TrainingAnalyticsError as exc:
                request = op.throw(exc)
            else:
                request = op.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result
    finally:
        await transport.close()


async def arun(op: Op[T], client: redis.asyncio.Redis) -> T:
    """Drive ``op`` to completion on an asyncio client (a cluster client: ``cluster.executor``)."""
    return await arun_on(op, _ASubmitted(client))
