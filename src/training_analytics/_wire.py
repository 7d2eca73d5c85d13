"""What goes on the wire and what comes back, for both executors (sans-I/O).

The commands that run a batch's calls, the exchange that loads code the server lacks, reply
decoding and error translation. Scripts go out as FCALL of a function library (see
:class:`~._protocol.Script`). A server that lacks the library (first use, restart without
persistence, FUNCTION FLUSH) replies "Function not found": the library is loaded and exactly the
calls that failed are sent again, in their order; the others already ran, and a call that
failed did not run at all, so nothing runs twice. A server without functions (Redis before 7,
an ACL without FUNCTION/FCALL) gets EVALSHA instead, with the same rule for NOSCRIPT, from then
on for that connection pool.
"""

from __future__ import annotations

import weakref
from collections.abc import Generator, Sequence
from typing import Any

import redis
import redis.asyncio

from ._protocol import Call, Command, ScriptCall
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


def decode_reply(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, list):
        return [decode_reply(v) for v in value]
    if isinstance(value, dict):
        return {decode_reply(k): decode_reply(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(decode_reply(v) for v in value)
    if isinstance(value, set):
        return {decode_reply(v) for v in value}
    return value


class ScriptsOnly:
    """The connection pools whose server runs no functions: their scripts go out as EVALSHA."""

    def __init__(self) -> None:
        self._pools: weakref.WeakSet[Any] = weakref.WeakSet()
        self._any = False  # a WeakSet lookup costs a microsecond; most processes never need one

    def __contains__(self, client: redis.Redis | redis.asyncio.Redis) -> bool:
        return self._any and client.connection_pool in self._pools

    def add(self, client: redis.Redis | redis.asyncio.Redis) -> None:
        self._pools.add(client.connection_pool)
        self._any = True


SCRIPTS_ONLY = ScriptsOnly()


def command_args(call: Call, functions: bool) -> tuple[Any, ...]:
    if isinstance(call, Command):
        return call.args
    script = call.script
    if functions:
        return ("FCALL", script.function, len(call.keys), *call.keys, *call.args)
    return ("EVALSHA", script.sha, len(call.keys), *call.keys, *call.args)


def lacks_code(reply: Any) -> bool:
    """The server does not hold the script or function library (yet)."""
    if isinstance(reply, redis.exceptions.NoScriptError):
        return True
    return isinstance(reply, redis.exceptions.ResponseError) and str(reply).startswith(
        ("NOSCRIPT", "Function not found")
    )


def refuses_functions(reply: Any) -> bool:
    """FCALL / FUNCTION LOAD unknown (Redis before 7) or not permitted to this user."""
    if isinstance(reply, redis.exceptions.NoPermissionError):
        return True
    return isinstance(reply, redis.exceptions.ResponseError) and str(reply).startswith(
        "unknown command"
    )


Commands = list[tuple[Any, ...]]


def commands_for(calls: Sequence[Call], functions: bool) -> Commands:
    return [command_args(call, functions) for call in calls]


def load_and_retry(
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
        and (lacks_code(reply) or (functions and refuses_functions(reply)))
    ]
    if not retry:
        return replies, functions
    scripts = {c.script.name: c.script for i in retry if isinstance(c := calls[i], ScriptCall)}
    if functions and not any(refuses_functions(replies[i]) for i in retry):
        loaded = yield [("FUNCTION", "LOAD", script.library) for script in scripts.values()]
        functions = not any(refuses_functions(reply) for reply in loaded)
        if functions:
            raise_load_errors(loaded)
    else:
        functions = False
    if not functions:
        loaded = yield [("SCRIPT", "LOAD", script.source) for script in scripts.values()]
        raise_load_errors(loaded)
    again = yield commands_for([calls[i] for i in retry], functions)
    for i, reply in zip(retry, again, strict=True):
        replies[i] = reply
    return replies, functions


def has_errors(replies: list[Any]) -> bool:
    return any(isinstance(reply, BaseException) for reply in replies)


def raise_load_errors(replies: list[Any]) -> None:
    for reply in replies:
        # Another client may have loaded the same library meanwhile.
        if isinstance(reply, BaseException) and "already exists" not in str(reply):
            raise translate(reply)


def translate(exc: BaseException) -> TrainingAnalyticsError:
    if isinstance(exc, TrainingAnalyticsError):
        return exc
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return StoreUnavailableError(f"Redis/Valkey server unreachable: {exc}")
    if isinstance(exc, redis.exceptions.ResponseError):
        return script_error(str(exc))
    return StoreError(f"{type(exc).__name__}: {exc}")


def decodes(client: redis.Redis | redis.asyncio.Redis) -> bool:
    """Whether the client already turns replies into ``str`` (then they need no second pass)."""
    return bool(client.connection_pool.connection_kwargs.get("decode_responses", False))


def finish(replies: list[Any], decoded: bool) -> list[Any]:
    """Decode replies; raise the first error among them, typed."""
    for reply in replies:
        if isinstance(reply, BaseException):
            raise translate(reply)
    return replies if decoded else [decode_reply(r) for r in replies]
