"""What goes on the wire and what comes back, for both executors (sans-I/O).

The commands that run a batch's calls, the exchange that loads code the server lacks, reply
decoding and error translation. Scripts go out as FCALL (FCALL_RO for reads) of a function
library (see :class:`~._protocol.Script`). A server that lacks the library (first use, restart
without persistence, FUNCTION FLUSH) replies "Function not found": the library is loaded and
exactly the calls that failed are sent again, in their order, in the same round trip (streamed
batches refused behind a failed one are re-sent after it); the others already ran, and a call
that failed did not run at all, so nothing runs twice. An ACL without FUNCTION/FCALL gets
EVALSHA (EVALSHA_RO) of the same code with the same ``#!lua`` flags, a server before Redis 7 a
plain script, with the same rule for NOSCRIPT, from then on for that connection pool (see
:func:`load_and_retry` for how the way is chosen).
"""

from __future__ import annotations

import weakref
from collections.abc import Generator, Sequence
from typing import Any, Literal, TypeAlias

import redis
import redis.asyncio

from ._protocol import Call, Command, Script, ScriptCall
from .errors import (
    CertificationExistsError,
    CertificationExpiredError,
    CertificationNotFoundError,
    ClusterModeError,
    CodeUnavailableError,
    ConcurrentUpdateError,
    CourseExistsError,
    CourseNotFoundError,
    IllegalTransitionError,
    InvalidInputError,
    NotIndexedError,
    StoreError,
    StoreFullError,
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
    "TA_WRONG_TYPE": StoreError,
    "TA_OUT_OF_ORDER": StoreError,
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
        # Integers as they are, without a call each: a batch's reply is a thousand of them.
        return [v if type(v) is int else decode_reply(v) for v in value]
    if isinstance(value, dict):
        return {decode_reply(k): decode_reply(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(decode_reply(v) for v in value)
    if isinstance(value, set):
        return {decode_reply(v) for v in value}
    return value


Mode: TypeAlias = Literal["functions", "scripts", "legacy"]
"""How a connection pool's server runs our code: FCALL of a function library; EVALSHA of a
script with a ``#!lua`` line (functions refused to this user); EVALSHA of a script without one
(a server before Redis 7, which knows neither)."""


class Modes:
    """The connection pools whose scripts do not go out as FCALL, and how they go out instead."""

    def __init__(self) -> None:
        self._pools: weakref.WeakKeyDictionary[Any, Mode] = weakref.WeakKeyDictionary()
        self._any = False  # a weak lookup costs a microsecond; most processes never need one

    def of(self, client: redis.Redis | redis.asyncio.Redis) -> Mode:
        if not self._any:
            return "functions"
        return self._pools.get(client.connection_pool, "functions")

    def set(self, client: redis.Redis | redis.asyncio.Redis, mode: Mode) -> None:
        if mode == "functions" and not self._any:
            return
        self._pools[client.connection_pool] = mode
        self._any = True


MODES = Modes()

#: Reloads of code the server lost that one exchange attempts before giving up (another client
#: flushing functions in a loop).
MAX_RELOADS = 10


def command_args(call: Call, mode: Mode) -> tuple[Any, ...]:
    if isinstance(call, Command):
        return call.args
    script = call.script
    if mode == "functions":
        name = "FCALL_RO" if script.read_only else "FCALL"
        return (name, script.function, len(call.keys), *call.keys, *call.args)
    if mode == "scripts":
        name = "EVALSHA_RO" if script.read_only else "EVALSHA"
        return (name, script.sha, len(call.keys), *call.keys, *call.args)
    return ("EVALSHA", script.legacy_sha, len(call.keys), *call.keys, *call.args)


def _load_command(script: Script, mode: Mode) -> tuple[Any, ...]:
    if mode == "functions":
        return ("FUNCTION", "LOAD", script.library)
    if mode == "scripts":
        return ("SCRIPT", "LOAD", script.source)
    return ("SCRIPT", "LOAD", script.legacy_source)


def lacks_code(reply: Any) -> bool:
    """The server does not hold the script or function library (yet)."""
    if isinstance(reply, redis.exceptions.NoScriptError):
        return True
    return isinstance(reply, redis.exceptions.ResponseError) and str(reply).startswith(
        ("NOSCRIPT", "Function not found")
    )


def unknown_command(reply: Any) -> bool:
    return isinstance(reply, redis.exceptions.ResponseError) and str(reply).startswith(
        "unknown command"
    )


def refuses_functions(reply: Any) -> bool:
    """FCALL / FUNCTION LOAD unknown (Redis before 7) or not permitted to this user."""
    return isinstance(reply, redis.exceptions.NoPermissionError) or unknown_command(reply)


def out_of_order(reply: Any) -> bool:
    """A streamed batch refused because the one before it has not run (see ``lua/apply.lua``)."""
    return isinstance(reply, redis.exceptions.ResponseError) and str(reply).startswith(
        "TA_OUT_OF_ORDER"
    )


def refuses_shebang(reply: Any) -> bool:
    """SCRIPT LOAD of a ``#!lua`` script on a server before Redis 7: a Lua syntax error."""
    text = str(reply)
    return "Error compiling script" in text and "near '#'" in text


Commands = list[tuple[Any, ...]]


def commands_for(calls: Sequence[Call], mode: Mode) -> Commands:
    return [command_args(call, mode) for call in calls]


def _to_retry(calls: Sequence[Call], replies: list[Any], sent_as: Mode) -> list[int]:
    """The calls to send again once code is loaded: those that failed for lack of code (or, sent
    as FCALL, of functions), and the streamed batches refused behind them, up to the first call
    that failed for a reason of its own (what was sent behind that one keeps its replies)."""
    retry: list[int] = []
    for i, reply in enumerate(replies):
        if not isinstance(reply, BaseException):
            continue
        if isinstance(calls[i], ScriptCall) and (
            lacks_code(reply)
            or (sent_as == "functions" and refuses_functions(reply))
            or (retry and out_of_order(reply))
        ):
            retry.append(i)
        else:
            break
    return retry


def _transaction_replies(sent: list[Any], count: int) -> tuple[list[Any], bool]:
    """The replies of ``count`` commands sent between MULTI and EXEC, and whether transactions
    work for this user. MULTI refused (an ACL without transactions): the commands ran one by one
    and EXEC failed, so their own replies count. EXEC failed otherwise (the transaction was
    discarded): none of them ran, and each gets that error."""
    if isinstance(sent[0], BaseException):
        return sent[1 : 1 + count], False
    outcome = sent[-1]
    if isinstance(outcome, BaseException):
        return [outcome] * count, True
    return list(outcome), True


def load_and_retry(
    calls: Sequence[Call], replies: list[Any], mode: Mode
) -> Generator[Commands, list[Any], tuple[list[Any], Mode]]:
    """After ``calls`` were sent and replied ``replies``: load the code the server lacked and
    send the calls that failed for it again, in their order, in the same round trip as the load,
    up to MAX_RELOADS times. If the code vanishes again between a load that worked and the calls
    (another client's FUNCTION FLUSH, which can fall between the writes that carry a large
    library), the next round goes in a MULTI/EXEC transaction, where nothing runs in between
    (unless this user may not use transactions). Yields the commands of each round trip;
    returns the calls' replies (errors as exception objects: the calls still failing get a
    typed error that says why) and the mode the connection pool goes on with.

    The way code is loaded adapts: FCALL or FUNCTION LOAD unknown (before Redis 7) switches the
    pool to scripts; either not permitted to this user, or FUNCTION LOAD refused by a server at
    its maxmemory (which accepts SCRIPT LOAD), sends this exchange's calls as scripts, and the
    pool keeps scripts if that worked and it was a permission; a ``#!lua`` line refused (before
    Redis 7) switches to legacy scripts. If no way is left, the calls fail with
    CodeUnavailableError (and the pool keeps FCALL: a library loaded later by someone allowed
    to is used)."""
    sending = mode  # how this exchange's calls go out; ``mode`` is what the pool keeps
    keep_scripts = False
    loaded_once, atomic = False, True
    for _ in range(MAX_RELOADS):
        retry = _to_retry(calls, replies, sending)
        if not retry:
            return replies, mode
        if sending == "functions":
            refused = [replies[i] for i in retry if refuses_functions(replies[i])]
            if any(unknown_command(reply) for reply in refused):
                mode = sending = "scripts"
            elif refused:
                sending, keep_scripts = "scripts", True
        scripts = {c.script.name: c.script for i in retry if isinstance(c := calls[i], ScriptCall)}
        loads = [_load_command(script, sending) for script in scripts.values()]
        resend = [*loads, *(command_args(calls[i], sending) for i in retry)]
        if loaded_once and atomic:
            # The code vanished between our load and our calls (another client flushing): a
            # large library goes out in several writes, so the server may run the flush in
            # between. In a transaction nothing runs between them.
            sent = yield [("MULTI",), *resend, ("EXEC",)]
            sent, atomic = _transaction_replies(sent, len(resend))
        else:
            sent = yield resend
        for i, reply in zip(retry, sent[len(loads) :], strict=True):
            replies[i] = reply
        failed = [
            reply
            for reply in sent[: len(loads)]
            if isinstance(reply, BaseException) and "already exists" not in str(reply)
        ]
        if not failed:
            loaded_once = True
            if keep_scripts and sending == "scripts":
                mode = "scripts"
            continue
        if sending == "functions":
            sending = "scripts"
            if any(unknown_command(reply) for reply in failed):
                mode = "scripts"
            keep_scripts = any(
                isinstance(reply, redis.exceptions.NoPermissionError) for reply in failed
            )
        elif sending == "scripts" and any(refuses_shebang(reply) for reply in failed):
            mode = sending = "legacy"
        else:
            error = CodeUnavailableError(
                f"the server refused to load this library's code: {translate(failed[0])}"
            )
            for i in _to_retry(calls, replies, sending):
                replies[i] = error
            return replies, mode
    gave_up = StoreError(
        f"the server lost this library's code {MAX_RELOADS} times in a row while it was being "
        "re-sent (another client flushing functions or scripts?); nothing of the calls "
        "reported here was applied"
    )
    for i in _to_retry(calls, replies, sending):
        replies[i] = gave_up
    return replies, mode


def has_errors(replies: list[Any]) -> bool:
    return any(isinstance(reply, BaseException) for reply in replies)


# MOVED and ASK (AskError), CLUSTERDOWN, CROSSSLOT, TRYAGAIN: replies only a cluster node sends.
_CLUSTER_REPLIES = (
    redis.exceptions.AskError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.ClusterCrossSlotError,
    redis.exceptions.TryAgainError,
)


def translate(exc: BaseException) -> TrainingAnalyticsError:
    if isinstance(exc, TrainingAnalyticsError):
        return exc
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return StoreUnavailableError(f"Redis/Valkey server unreachable: {exc}")
    if isinstance(exc, redis.exceptions.OutOfMemoryError) or str(exc).startswith("OOM "):
        return StoreFullError(f"the server is at its maxmemory and refused the call: {exc}")
    if isinstance(exc, _CLUSTER_REPLIES):
        # A plain client on a cluster node: refuse in words that name the fix.
        return ClusterModeError(
            f"the server is a cluster node ({type(exc).__name__}: {exc}); connect with "
            "redis+cluster://host:port"
        )
    if isinstance(exc, redis.exceptions.ResponseError):
        return script_error(str(exc))
    return StoreError(f"{type(exc).__name__}: {exc}")


def unencodable(exc: UnicodeEncodeError) -> InvalidInputError:
    """A str argument that is not valid Unicode (a lone surrogate): refused before sending."""
    return InvalidInputError(
        f"a value cannot be encoded as UTF-8 ({exc.reason} at position {exc.start}); "
        "nothing was sent"
    )


def decodes(client: redis.Redis | redis.asyncio.Redis) -> bool:
    """Whether the client already turns replies into ``str`` (then they need no second pass)."""
    return bool(client.connection_pool.connection_kwargs.get("decode_responses", False))


def finish(replies: list[Any], decoded: bool) -> list[Any]:
    """Decode replies; raise the first error among them, typed."""
    for reply in replies:
        if isinstance(reply, BaseException):
            raise translate(reply)
    return replies if decoded else [decode_reply(r) for r in replies]
