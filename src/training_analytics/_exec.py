"""The two executors: drive a sans-I/O operation on a sync or an asyncio redis-py client.

Both share everything but the waiting: the commands, the exchange that loads code the server
lacks, reply decoding and error translation live in ``_wire``, and submitted batches follow
``_pipelined``; ``run`` and ``arun`` perform the same steps, with and without ``await``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from functools import partial
from typing import Any, Final, TypeVar

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
    pipelined state, the connection taken for it, and the error that broke that connection."""

    def __init__(self, client: redis.Redis | redis.asyncio.Redis) -> None:
        self.client = client
        self.state = Pipelined(MODES.of(client), decodes(client))
        self.connection: Any = None
        self.broken: TrainingAnalyticsError | None = None

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
    """One operation's submitted batches on one connection of the client's pool. A client bound
    to a single connection runs each batch when submitted."""

    client: redis.Redis

    def submit(self, batch: Batch) -> int:
        if self.client.connection is None:
            return self._perform(self.state.submit(batch))
        outcome: list[Any] | TrainingAnalyticsError
        try:
            outcome = execute(self.client, batch)
        except TrainingAnalyticsError as exc:
            outcome = exc
        return self.state.settle(outcome)

    def result(self, ticket: int) -> list[Any]:
        return self._perform(self.state.result(ticket))

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


def run(op: Op[T], client: redis.Redis) -> T:
    """Drive ``op`` to completion on a sync client (a cluster client: ``cluster.executor``)."""
    submitted: _Submitted | None = None
    try:
        request = next(op)
        while True:
            try:
                reply: Any
                if isinstance(request, Batch):
                    reply = execute(client, request)
                elif isinstance(request, Submit):
                    if submitted is None:
                        submitted = _Submitted(client)
                    reply = submitted.submit(request.batch)
                else:
                    assert submitted is not None, "Await before any Submit"
                    reply = submitted.result(request.ticket)
            except TrainingAnalyticsError as exc:
                request = op.throw(exc)
            else:
                request = op.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result
    finally:
        if submitted is not None:
            # Nothing this call started is left unread on a connection.
            submitted.close()


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

    client: redis.asyncio.Redis

    async def submit(self, batch: Batch) -> int:
        if self.client.connection is None:
            return await self._perform(self.state.submit(batch))
        outcome: list[Any] | TrainingAnalyticsError
        try:
            outcome = await aexecute(self.client, batch)
        except TrainingAnalyticsError as exc:
            outcome = exc
        return self.state.settle(outcome)

    async def result(self, ticket: int) -> list[Any]:
        return await self._perform(self.state.result(ticket))

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


async def arun(op: Op[T], client: redis.asyncio.Redis) -> T:
    """Drive ``op`` to completion on an asyncio client (a cluster client: ``cluster.executor``)."""
    submitted: _ASubmitted | None = None
    try:
        request = next(op)
        while True:
            try:
                reply: Any
                if isinstance(request, Batch):
                    reply = await aexecute(client, request)
                elif isinstance(request, Submit):
                    if submitted is None:
                        submitted = _ASubmitted(client)
                    reply = await submitted.submit(request.batch)
                else:
                    assert submitted is not None, "Await before any Submit"
                    reply = await submitted.result(request.ticket)
            except TrainingAnalyticsError as exc:
                request = op.throw(exc)
            else:
                request = op.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result
    finally:
        if submitted is not None:
            await submitted.close()
