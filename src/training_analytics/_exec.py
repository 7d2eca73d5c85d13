"""The two executors: drive a sans-I/O operation on a sync or an asyncio redis-py client.

Both share everything but the waiting: command building, the script-loading exchange, reply
decoding and error translation are the functions at the top; ``run`` and ``arun`` differ in
``await`` and in how a submitted batch runs alongside the operation (a worker thread, an
asyncio task).

Scripts go out as FCALL of a function library (see :class:`~._protocol.Script`). A server that
lacks the library (first use, restart without persistence, FUNCTION FLUSH) replies "Function not
found": the library is loaded and exactly the calls that failed are sent again, in their order;
the others already ran, and a call that failed did not run at all, so nothing runs twice. A
server without functions (Redis before 7, an ACL without FUNCTION/FCALL) gets EVALSHA instead,
with the same rule for NOSCRIPT, from then on for that connection pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import redis
import redis.asyncio

from ._protocol import Batch, Call, Command, Op, ScriptCall, Submit
from .errors import (
    CertificationExistsError,
    CertificationExpiredError,
    CertificationNotFoundError,
    ConcurrentUpdateError,
    CourseExistsError,
    CourseNotFoundError,
    IllegalTransitionError,
    InvalidInputError,
    NotIndexedError,
    StoreError,
    StoreUnavailableError,
    TrainingAnalyticsError,
)

T = TypeVar("T")

#: Error codes our Lua scripts reply with (``TA_<CODE> message``), mapped to the typed errors.
SCRIPT_ERRORS: dict[str, type[TrainingAnalyticsError]] = {
    "TA_NOT_INDEXED": NotIndexedError,
    "TA_CERT_NOT_FOUND": CertificationNotFoundError,
    "TA_CERT_EXISTS": CertificationExistsError,
    "TA_CERT_EXPIRED": CertificationExpiredError,
    "TA_ILLEGAL_TRANSITION": IllegalTransitionError,
    "TA_BAD_INPUT": InvalidInputError,
    "TA_COURSE_NOT_FOUND": CourseNotFoundError,
    "TA_COURSE_EXISTS": CourseExistsError,
    "TA_RETRY": ConcurrentUpdateError,
    "TA_STORE_ERROR": StoreError,
}


def script_error(message: str) -> TrainingAnalyticsError:
    """The typed error for a ``TA_<CODE> detail`` message; StoreError for anything else."""
    code, _, detail = message.partition(" ")
    kind = SCRIPT_ERRORS.get(code)
    if kind is None:
        return StoreError(message)
    return kind(detail or code)


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {_decode(k): _decode(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_decode(v) for v in value)
    if isinstance(value, set):
        return {_decode(v) for v in value}
    return value


class _ScriptsOnly:
    """The connection pools whose server runs no functions: their scripts go out as EVALSHA."""

    def __init__(self) -> None:
        self._pools: weakref.WeakSet[Any] = weakref.WeakSet()
        self._any = False  # a WeakSet lookup costs a microsecond; most processes never need one

    def __contains__(self, client: redis.Redis | redis.asyncio.Redis) -> bool:
        return self._any and client.connection_pool in self._pools

    def add(self, client: redis.Redis | redis.asyncio.Redis) -> None:
        self._pools.add(client.connection_pool)
        self._any = True


_SCRIPTS_ONLY = _ScriptsOnly()


def _command_args(call: Call, functions: bool) -> tuple[Any, ...]:
    if isinstance(call, Command):
        return call.args
    script = call.script
    if functions:
        return ("FCALL", script.function, len(call.keys), *call.keys, *call.args)
    return ("EVALSHA", script.sha, len(call.keys), *call.keys, *call.args)


def _lacks_code(reply: Any) -> bool:
    """The server does not hold the script or function library (yet)."""
    if isinstance(reply, redis.exceptions.NoScriptError):
        return True
    return isinstance(reply, redis.exceptions.ResponseError) and str(reply).startswith(
        ("NOSCRIPT", "Function not found")
    )


def _refuses_functions(reply: Any) -> bool:
    """FCALL / FUNCTION LOAD unknown (Redis before 7) or not permitted to this user."""
    if isinstance(reply, redis.exceptions.NoPermissionError):
        return True
    return isinstance(reply, redis.exceptions.ResponseError) and str(reply).startswith(
        "unknown command"
    )


Commands = list[tuple[Any, ...]]


def _commands(calls: Sequence[Call], functions: bool) -> Commands:
    return [_command_args(call, functions) for call in calls]


def _exchange(
    calls: Sequence[Call], replies: list[Any], functions: bool
) -> Generator[Commands, list[Any], tuple[list[Any], bool]]:
    """After ``calls`` were sent and replied ``replies``: load the code the server lacked and
    run the calls that failed for it again. Yields the commands of each round trip; returns the
    calls' replies (errors as exception objects) and whether functions worked."""
    retry = [
        i
        for i, reply in enumerate(replies)
        if isinstance(reply, redis.exceptions.ResponseError)
        and isinstance(calls[i], ScriptCall)
        and (_lacks_code(reply) or (functions and _refuses_functions(reply)))
    ]
    if not retry:
        return replies, functions
    scripts = {c.script.name: c.script for i in retry if isinstance(c := calls[i], ScriptCall)}
    if functions and not any(_refuses_functions(replies[i]) for i in retry):
        loaded = yield [("FUNCTION", "LOAD", script.library) for script in scripts.values()]
        functions = not any(_refuses_functions(reply) for reply in loaded)
        if functions:
            _raise_load_errors(loaded)
    else:
        functions = False
    if not functions:
        loaded = yield [("SCRIPT", "LOAD", script.source) for script in scripts.values()]
        _raise_load_errors(loaded)
    again = yield _commands([calls[i] for i in retry], functions)
    for i, reply in zip(retry, again, strict=True):
        replies[i] = reply
    return replies, functions


def _failed(replies: list[Any]) -> bool:
    return any(isinstance(reply, BaseException) for reply in replies)


def _raise_load_errors(replies: list[Any]) -> None:
    for reply in replies:
        # Another client may have loaded the same library meanwhile.
        if isinstance(reply, BaseException) and "already exists" not in str(reply):
            raise _translate(reply)


def _translate(exc: BaseException) -> TrainingAnalyticsError:
    if isinstance(exc, TrainingAnalyticsError):
        return exc
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return StoreUnavailableError(f"Redis/Valkey server unreachable: {exc}")
    if isinstance(exc, redis.exceptions.ResponseError):
        return script_error(str(exc))
    return StoreError(f"{type(exc).__name__}: {exc}")


def _decodes(client: redis.Redis | redis.asyncio.Redis) -> bool:
    """Whether the client already turns replies into ``str`` (then they need no second pass)."""
    return bool(client.connection_pool.connection_kwargs.get("decode_responses", False))


def _finish(replies: list[Any], decoded: bool) -> list[Any]:
    """Decode replies; raise the first error among them, typed."""
    for reply in replies:
        if isinstance(reply, BaseException):
            raise _translate(reply)
    return replies if decoded else [_decode(r) for r in replies]


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


def _drive(
    client: redis.Redis, calls: Sequence[Call], replies: list[Any], functions: bool
) -> tuple[list[Any], bool]:
    exchange = _exchange(calls, replies, functions)
    try:
        commands = next(exchange)
        while True:
            commands = exchange.send(_send(client, commands))
    except StopIteration as done:
        result: tuple[list[Any], bool] = done.value
        return result


def execute(client: redis.Redis, batch: Batch) -> list[Any]:
    calls, functions = batch.calls, client not in _SCRIPTS_ONLY
    try:
        replies = _send(client, _commands(calls, functions))
        if _failed(replies):  # perhaps code the server lacks: the slow path
            replies, worked = _drive(client, calls, replies, functions)
            if functions and not worked:
                _SCRIPTS_ONLY.add(client)
    except redis.exceptions.RedisError as exc:
        raise _translate(exc) from exc
    return _finish(replies, _decodes(client))


def run(op: Op[T], client: redis.Redis) -> T:
    """Drive ``op`` to completion on a sync client.

    Submitted batches run on one worker thread, in order; the client's connection pool is
    thread-safe. The thread waits on the socket with the GIL released, so the server works on
    one batch while this thread prepares the next.
    """
    worker: ThreadPoolExecutor | None = None
    try:
        request = next(op)
        while True:
            try:
                reply: Any
                if isinstance(request, Batch):
                    reply = execute(client, request)
                elif isinstance(request, Submit):
                    if worker is None:
                        worker = ThreadPoolExecutor(1, thread_name_prefix="training-analytics")
                    reply = worker.submit(execute, client, request.batch)
                else:
                    reply = request.ticket.result()
            except TrainingAnalyticsError as exc:
                request = op.throw(exc)
            else:
                request = op.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result
    finally:
        if worker is not None:
            # Nothing this call started keeps writing after it returns or raises.
            worker.shutdown(wait=True)


# --- asyncio -------------------------------------------------------------------------------------


async def _asend(client: redis.asyncio.Redis, commands: Commands) -> list[Any]:
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


async def _adrive(
    client: redis.asyncio.Redis, calls: Sequence[Call], replies: list[Any], functions: bool
) -> tuple[list[Any], bool]:
    exchange = _exchange(calls, replies, functions)
    try:
        commands = next(exchange)
        while True:
            commands = exchange.send(await _asend(client, commands))
    except StopIteration as done:
        result: tuple[list[Any], bool] = done.value
        return result


async def aexecute(client: redis.asyncio.Redis, batch: Batch) -> list[Any]:
    calls, functions = batch.calls, client not in _SCRIPTS_ONLY
    try:
        replies = await _asend(client, _commands(calls, functions))
        if _failed(replies):  # perhaps code the server lacks: the slow path
            replies, worked = await _adrive(client, calls, replies, functions)
            if functions and not worked:
                _SCRIPTS_ONLY.add(client)
    except redis.exceptions.RedisError as exc:
        raise _translate(exc) from exc
    return _finish(replies, _decodes(client))


async def _after(
    previous: asyncio.Future[Any] | None, client: redis.asyncio.Redis, batch: Batch
) -> list[Any]:
    if previous is not None:
        # Awaited directly, so this task wakes before the operation that awaits the same batch:
        # the next request is on the wire while the operation prepares the one after. Whatever
        # became of the previous batch, this one runs: the operation collects both outcomes.
        with contextlib.suppress(TrainingAnalyticsError):
            await previous
    return await aexecute(client, batch)


async def arun(op: Op[T], client: redis.asyncio.Redis) -> T:
    """Drive ``op`` to completion on an asyncio client.

    Submitted batches run as tasks chained in submission order. Each new task is given one turn
    of the event loop, enough to write its request, so the server works on it while the
    operation prepares the next batch.
    """
    submitted: list[asyncio.Future[Any]] = []
    try:
        request = next(op)
        while True:
            try:
                reply: Any
                if isinstance(request, Batch):
                    reply = await aexecute(client, request)
                elif isinstance(request, Submit):
                    previous = submitted[-1] if submitted else None
                    reply = asyncio.ensure_future(_after(previous, client, request.batch))
                    submitted.append(reply)
                    await asyncio.sleep(0)
                else:
                    reply = await request.ticket
            except TrainingAnalyticsError as exc:
                request = op.throw(exc)
            else:
                request = op.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result
    finally:
        if submitted:
            await asyncio.gather(*submitted, return_exceptions=True)
