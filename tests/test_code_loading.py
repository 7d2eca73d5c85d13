"""The code-loading exchange (``_wire.load_and_retry``), driven with the replies servers give.

It is sans-I/O: these tests feed it the replies of situations no test server here can produce
on demand (a server before Redis 7, which compiles no ``#!lua`` line; a library flushed again
and again), and check what it sends and what it concludes. The paths it leads to are tested
against real servers elsewhere (test_refusals, test_acl, test_reload_order).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
import redis

import training_analytics as ta
from training_analytics._protocol import Call, ScriptCall, cmd, load_script
from training_analytics._wire import MAX_RELOADS, Mode, load_and_retry
from training_analytics._writes import APPLY

CALL = ScriptCall(APPLY, ("k",), ("E",))
NOT_FOUND = redis.exceptions.ResponseError("Function not found")
NOSCRIPT = redis.exceptions.NoScriptError("No matching script.")
UNKNOWN_FCALL = redis.exceptions.ResponseError("unknown command 'FCALL', with args beginning with:")
UNKNOWN_FUNCTION = redis.exceptions.ResponseError("unknown command 'FUNCTION'")
NO_SHEBANG = redis.exceptions.ResponseError(
    "Error compiling script (new function): user_script:1: unexpected symbol near '#'"
)
OOM = redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
NOPERM = redis.exceptions.NoPermissionError("this user has no permissions to run the command")


def _drive(
    exchange: Generator[list[tuple[Any, ...]], list[Any], tuple[list[Any], Mode]],
    answers: list[list[Any]],
) -> tuple[list[list[tuple[Any, ...]]], list[Any], Mode]:
    """Run the exchange, answering each round trip with the next list of replies."""
    sent = []
    try:
        commands = next(exchange)
        for answer in answers:
            sent.append(commands)
            commands = exchange.send(answer)
    except StopIteration as done:
        replies, mode = done.value
        return sent, replies, mode
    raise AssertionError(f"the exchange wanted more round trips: {commands}")


def test_a_server_before_redis_7_gets_the_plain_script() -> None:
    sent, replies, mode = _drive(
        load_and_retry([CALL], [UNKNOWN_FCALL], "functions"),
        [
            [NO_SHEBANG, NOSCRIPT],  # SCRIPT LOAD with a #!lua line: does not compile
            [APPLY.legacy_sha, [1]],  # the plain form loads and runs
        ],
    )
    assert mode == "legacy"
    assert replies == [[1]]
    assert sent[0][0] == ("SCRIPT", "LOAD", APPLY.source)
    assert sent[0][1][:2] == ("EVALSHA", APPLY.sha)
    assert sent[1][0] == ("SCRIPT", "LOAD", APPLY.legacy_source)
    assert sent[1][1][:2] == ("EVALSHA", APPLY.legacy_sha)
    assert not APPLY.legacy_source.startswith("#!")
    assert APPLY.legacy_source.startswith("redis.call('SETRANGE', KEYS[1], 0, '')")
    assert APPLY.source.startswith("#!lua\n")


def test_code_lost_between_load_and_call_is_loaded_again_in_a_transaction() -> None:
    # The library loads, and is gone again when the call arrives (another client flushed in
    # between): the next round sends both in MULTI/EXEC, where nothing can come between them.
    answers: list[list[Any]] = [["OK", NOT_FOUND], ["OK", "QUEUED", "QUEUED", ["OK", [1]]]]
    sent, replies, mode = _drive(load_and_retry([CALL], [NOT_FOUND], "functions"), answers)
    assert sent[0][0][:2] == ("FUNCTION", "LOAD")
    assert sent[1][0] == ("MULTI",) and sent[1][-1] == ("EXEC",)
    assert sent[1][1][:2] == ("FUNCTION", "LOAD") and sent[1][2][0] == "FCALL"
    assert (replies, mode) == ([[1]], "functions")


def test_without_transactions_code_lost_again_and_again_gives_up_with_a_clear_error() -> None:
    # MULTI refused to this user: the commands ran one by one (and lost the code again); EXEC
    # fails without MULTI. From then on the rounds go without a transaction.
    first: list[list[Any]] = [["OK", NOT_FOUND], [NOPERM, "OK", NOT_FOUND, NOPERM]]
    answers = first + [["OK", NOT_FOUND]] * (MAX_RELOADS - 2)
    sent, replies, mode = _drive(load_and_retry([CALL], [NOT_FOUND], "functions"), answers)
    assert len(sent) == MAX_RELOADS
    assert sent[1][0] == ("MULTI",)
    assert all(commands[0][:2] == ("FUNCTION", "LOAD") for commands in sent[2:])
    assert mode == "functions"
    assert isinstance(replies[0], ta.StoreError)
    assert "lost this library's code 10 times" in str(replies[0])


def test_a_full_server_loads_a_script_for_this_call_only() -> None:
    read = ScriptCall(load_script("cardinalities.lua", read_only=True), ("s",), ())
    sent, replies, mode = _drive(
        load_and_retry([read], [NOT_FOUND], "functions"),
        [[OOM, NOT_FOUND], ["sha", [1]]],
    )
    assert sent[1][0][:2] == ("SCRIPT", "LOAD")
    assert sent[1][1][0] == "EVALSHA_RO"
    assert (replies, mode) == ([[1]], "functions")


def test_a_user_who_may_not_load_functions_switches_to_scripts() -> None:
    _sent, replies, mode = _drive(
        load_and_retry([CALL], [NOT_FOUND], "functions"),
        [[NOPERM, NOT_FOUND], ["sha", [1]]],
    )
    assert (replies, mode) == ([[1]], "scripts")


def test_a_user_who_may_load_nothing_gets_a_typed_error() -> None:
    _sent, replies, mode = _drive(
        load_and_retry([CALL], [NOT_FOUND], "functions"),
        [[NOPERM, NOT_FOUND], [NOPERM, NOSCRIPT]],
    )
    assert mode == "functions"  # FCALL itself is allowed: a library loaded later is used
    assert isinstance(replies[0], ta.CodeUnavailableError)


def test_batches_refused_behind_a_failed_one_are_re_sent_in_order() -> None:
    out_of_order = redis.exceptions.ResponseError("TA_OUT_OF_ORDER batch 3 after batch 1")
    own_error = redis.exceptions.ResponseError("TA_NOT_INDEXED run reindex")
    calls: list[Call] = [CALL, CALL, CALL, cmd("GET", "x"), CALL]
    replies: list[Any] = [[1], NOT_FOUND, out_of_order, own_error, out_of_order]
    sent, replies, _mode = _drive(load_and_retry(calls, replies, "functions"), [["OK", [1], [1]]])
    # The two after the failed one are re-sent, in order; what follows a failure of its own is
    # left as it was.
    assert [c[0] for c in sent[0]] == ["FUNCTION", "FCALL", "FCALL"]
    assert replies[:3] == [[1], [1], [1]]
    assert replies[3] is own_error and replies[4] is out_of_order


def test_out_of_order_without_a_failure_before_it_is_not_retried() -> None:
    out_of_order = redis.exceptions.ResponseError("TA_OUT_OF_ORDER batch 3 after batch 1")
    with pytest.raises(StopIteration):
        next(load_and_retry([CALL], [out_of_order], "functions"))


def test_fcall_not_permitted_and_nothing_loadable_keeps_functions_for_later() -> None:
    _sent, replies, mode = _drive(
        load_and_retry([CALL], [NOPERM], "functions"), [[NOPERM, NOSCRIPT]]
    )
    assert mode == "functions"
    assert isinstance(replies[0], ta.CodeUnavailableError)


def test_a_script_not_permitted_is_not_retried() -> None:
    with pytest.raises(StopIteration) as done:
        next(load_and_retry([CALL], [NOPERM], "scripts"))
    assert done.value.value == ([NOPERM], "scripts")
