"""The two executors: drive a sans-I/O operation on a sync or an asyncio redis-py client.

Both share everything but the waiting: command building, reply decoding, script loading rules
and error translation are the functions at the top; ``run`` and ``arun`` differ in ``await`` and
in how a submitted batch runs alongside the operation (a worker thread, an asyncio task).

Scripts go out as EVALSHA. A NOSCRIPT reply (server restarted, SCRIPT FLUSH) loads the script
and re-sends exactly the calls that failed, in their order; the others already ran, and a
script that replied NOSCRIPT did not run at all, so nothing runs twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import redis
import redis.asyncio

from ._protocol import Batch, Call, Command, Op, Script, ScriptCall, Submit
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


def _command_args(call: Call) -> tuple[Any, ...]:
    if isinstance(call, Command):
        return call.args
    return ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)


def _is_noscript(reply: Any) -> bool:
    return isinstance(reply, redis.exceptions.NoScriptError) or (
        isinstance(reply, redis.exceptions.ResponseError) and str(reply).startswith("NOSCRIPT")
    )


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


def _scripts_of(calls: list[Call]) -> dict[str, Script]:
    return {c.script.sha: c.script for c in calls if isinstance(c, ScriptCall)}


# --- sync ----------------------------------------------------------------------------------------


def _send(client: redis.Redis, calls: list[Call]) -> list[Any]:
    if len(calls) == 1:
        send: Callable[..., Any] = client.execute_command
        try:
            return [send(*_command_args(calls[0]))]
        except redis.exceptions.ResponseError as exc:
            return [exc]
    pipe = client.pipeline(transaction=False)
    queue: Callable[..., Any] = pipe.execute_command
    for call in calls:
        queue(*_command_args(call))
    return list(pipe.execute(raise_on_error=False))


def execute(client: redis.Redis, batch: Batch) -> list[Any]:
    calls = list(batch.calls)
    try:
        replies = _send(client, calls)
        retry = [i for i, r in enumerate(replies) if _is_noscript(r)]
        if retry:
            load: Callable[..., Any] = client.execute_command
            for script in _scripts_of([calls[i] for i in retry]).values():
                load("SCRIPT", "LOAD", script.source)
            for i, reply in zip(retry, _send(client, [calls[i] for i in retry]), strict=True):
                replies[i] = reply
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


async def _asend(client: redis.asyncio.Redis, calls: list[Call]) -> list[Any]:
    if len(calls) == 1:
        send: Callable[..., Awaitable[Any]] = client.execute_command
        try:
            return [await send(*_command_args(calls[0]))]
        except redis.exceptions.ResponseError as exc:
            return [exc]
    pipe = client.pipeline(transaction=False)
    queue: Callable[..., Any] = pipe.execute_command
    for call in calls:
        queue(*_command_args(call))
    return list(await pipe.execute(raise_on_error=False))


async def aexecute(client: redis.asyncio.Redis, batch: Batch) -> list[Any]:
    calls = list(batch.calls)
    try:
        replies = await _asend(client, calls)
        retry = [i for i, r in enumerate(replies) if _is_noscript(r)]
        if retry:
            load: Callable[..., Awaitable[Any]] = client.execute_command
            for script in _scripts_of([calls[i] for i in retry]).values():
                await load("SCRIPT", "LOAD", script.source)
            again = await _asend(client, [calls[i] for i in retry])
            for i, reply in zip(retry, again, strict=True):
                replies[i] = reply
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
