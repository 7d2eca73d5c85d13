"""Server-side code: function libraries loaded on demand, EVALSHA where functions are refused.

Writes run as FCALL of a function library the client loads when the server lacks it (first use,
FUNCTION FLUSH, a restart without persistence). A server or user without functions gets the
same code as EVALSHA scripts. Either way a reload re-sends only the calls that failed for it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

import training_analytics as ta
from training_analytics._exec import aexecute, execute
from training_analytics._protocol import Batch, ScriptCall, cmd, load_script

from .stores import ONE_SERVER

CARDINALITIES = load_script("cardinalities.lua", read_only=True)


def _library_names(client: redis.Redis) -> list[str]:
    # RESP2 replies each library as a flat [field, value, ...] list.
    libraries = [dict(zip(lib[::2], lib[1::2], strict=True)) for lib in client.function_list()]
    return sorted(str(library["library_name"]) for library in libraries)


@ONE_SERVER
def test_the_write_library_is_loaded_on_first_use(analytics: Any, client: redis.Redis) -> None:
    client.function_flush()
    assert analytics.record_enrollment("u1", "c1") is True
    assert any(name.startswith("training_analytics_apply_") for name in _library_names(client))


def test_a_flushed_library_is_loaded_again(analytics: Any, client: redis.Redis) -> None:
    assert analytics.record_enrollment("u1", "c1") is True
    client.function_flush()
    assert analytics.record_enrollment("u2", "c1") is True
    assert analytics.record_enrollment("u2", "c1") is False
    assert analytics.get_course_enrollment_count("c1") == 2


@ONE_SERVER
def test_reloading_code_runs_the_other_calls_once(client: redis.Redis) -> None:
    client.function_flush()
    client.sadd("s", "a", "b")
    batch = Batch((cmd("INCR", "n"), ScriptCall(CARDINALITIES, ("s",), ()), cmd("INCR", "n")))
    assert execute(client, batch) == [1, [2], 2]
    assert client.get("n") == "2"


@pytest.fixture
def user_without_functions(client: redis.Redis, redis_url: str) -> Iterator[str]:
    """A URL for an ACL user who may run anything but FUNCTION and FCALL (as on servers before
    Redis 7, which know neither)."""
    name = f"nofunctions-{uuid.uuid4().hex[:8]}"
    client.acl_setuser(
        name,
        enabled=True,
        passwords=["+secret"],
        keys=["*"],
        commands=["+@all", "-function", "-fcall", "-fcall_ro"],
    )
    host_and_db = redis_url.split("://", 1)[1]
    yield f"redis://{name}:secret@{host_and_db}"
    client.acl_deluser(name)


@ONE_SERVER
def test_without_functions_writes_run_as_scripts(
    user_without_functions: str, client: redis.Redis
) -> None:
    user = redis.Redis.from_url(user_without_functions, decode_responses=True)
    analytics = ta.TrainingAnalytics(user)
    assert analytics.record_enrollment("u1", "c1") is True
    assert analytics.record_module_start("u1", "c1", "m1") is True
    client.script_flush()  # NOSCRIPT on the next call: the script is loaded again
    assert analytics.record_enrollment("u2", "c1") is True
    assert analytics.get_course_enrollment_count("c1") == 2
    batch = Batch((cmd("INCR", "n"), ScriptCall(CARDINALITIES, ("training:enrollments:c1",), ())))
    client.script_flush()
    assert execute(user, batch) == [1, [2]]
    assert client.get("n") == "1"
    user.close()


@ONE_SERVER
def test_without_functions_async(user_without_functions: str, client: redis.Redis) -> None:
    async def scenario() -> list[Any]:
        user = redis.asyncio.Redis.from_url(user_without_functions)
        analytics = ta.AsyncTrainingAnalytics(user)
        try:
            first = await analytics.record_enrollment("u1", "c1")
            client.script_flush()
            second = await analytics.record_enrollment("u2", "c1")
            batch = Batch((cmd("INCR", "n"), ScriptCall(CARDINALITIES, ("s",), ())))
            replies = await aexecute(user, batch)
            return [first, second, await analytics.get_course_enrollment_count("c1"), replies]
        finally:
            await user.aclose()

    assert asyncio.run(scenario()) == [True, True, 2, [1, [0]]]
    assert client.get("n") == "1"
