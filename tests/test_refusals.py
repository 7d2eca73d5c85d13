"""A refused write changes nothing, on every path the code can take to the server.

Each test snapshots the whole keyspace (DUMP of every key, byte for byte, and whether it has a
TTL) around the refused call. The paths: FCALL of the function library; EVALSHA of the script
form with its ``#!lua`` line (an ACL user without FUNCTION/FCALL); EVALSHA of the legacy form
without one (what a server before Redis 7 runs, forced here on a server that has both).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
import redis.asyncio

import training_analytics as ta
from training_analytics._wire import MODES

from .conftest import SyncView
from .factories import NOW, certification, course
from .stores import ONE_SERVER, store_client

pytestmark = ONE_SERVER

AT = "2025-06-01T10:00:00Z"


def dump_all(url: str) -> dict[bytes, tuple[bytes | None, bool]]:
    """Every key's DUMP and whether it expires."""
    raw = store_client(url)
    try:
        return {
            key: (raw.dump(key), raw.pttl(key) > 0) for key in sorted(raw.scan_iter(count=1000))
        }
    finally:
        raw.close()


@contextmanager
def memory_full(client: redis.Redis) -> Iterator[None]:
    """The server at its maxmemory with noeviction: every write that may grow memory refused."""
    old = str(client.config_get("maxmemory")["maxmemory"])
    policy = str(client.config_get("maxmemory-policy")["maxmemory-policy"])
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)
    try:
        yield
    finally:
        client.config_set("maxmemory", old)
        client.config_set("maxmemory-policy", policy)


@pytest.fixture
def no_functions_url(client: redis.Redis, redis_url: str) -> Iterator[str]:
    """A URL for an ACL user who may run anything but FUNCTION and FCALL."""
    name = f"nofunctions-{uuid.uuid4().hex[:8]}"
    client.acl_setuser(
        name,
        enabled=True,
        passwords=["+secret"],
        keys=["*"],
        commands=["+@all", "-function", "-fcall", "-fcall_ro"],
    )
    yield f"redis://{name}:secret@{redis_url.split('://', 1)[1]}"
    client.acl_deluser(name)


@pytest.fixture(params=["functions", "scripts", "legacy"])
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["sync", "async"])
def writer(
    request: pytest.FixtureRequest, path: str, redis_url: str, client: redis.Redis
) -> Iterator[Any]:
    """A facade (sync, or async behind SyncView) whose writes take ``path`` to the server."""
    url = redis_url
    if path == "scripts":
        url = request.getfixturevalue("no_functions_url")
    if request.param == "sync":
        own = redis.Redis.from_url(url, decode_responses=True)
        if path == "legacy":
            MODES.set(own, "legacy")
        yield ta.TrainingAnalytics(own, clock=lambda: NOW)
        own.close()
        return
    loop = asyncio.new_event_loop()
    aown = redis.asyncio.Redis.from_url(url)
    if path == "legacy":
        MODES.set(aown, "legacy")
    yield SyncView(ta.AsyncTrainingAnalytics(aown, clock=lambda: NOW), loop)
    loop.run_until_complete(aown.aclose())
    loop.close()


def _progress(user: str, score: float, course: str = "c0") -> dict[str, Any]:
    return {
        "userId": user,
        "courseId": course,
        "status": "completed",
        "moduleProgress": [{"moduleId": "m1", "status": "completed", "score": score}],
        "overallScore": score,
        "startedAt": "2025-05-01T00:00:00Z",
        "completedAt": AT,
        "lastAccessedAt": AT,
        "totalTimeSpentMinutes": 42,
    }


def _seed(analytics: Any) -> None:
    analytics.record_enrollment("u0", "c0", at=AT)
    analytics.save_user_course_progress(_progress("u0", 80))
    analytics.record_module_start("u0", "c0", "m1")
    analytics.issue_training_certification(certification("cert1"))


WRITES: dict[str, Callable[[Any], object]] = {
    "enrol": lambda a: a.record_enrollment("u1", "c0", at=AT),
    "complete": lambda a: a.record_completion("u1", "c0", at=AT),
    "module start": lambda a: a.record_module_start("u1", "c0", "m1"),
    "module completion": lambda a: a.record_module_completion("u1", "c0", "m1"),
    "progress": lambda a: a.save_user_course_progress(_progress("u0", 95)),
    "issue": lambda a: a.issue_training_certification(certification("cert2")),
    "claim": lambda a: a.update_certification_status("cert1", "claimed"),
    "batch": lambda a: a.record_many(
        [
            ta.EnrollmentEvent(user_id="u1", course_id="c0", at=AT),
            ta.EnrollmentEvent(user_id="u2", course_id="c0", at=AT),
            ta.ProgressEvent.model_validate({"progress": _progress("u0", 95)}),
            ta.ProgressEvent.model_validate({"progress": _progress("u1", 60)}),
            ta.CompletionEvent(user_id="u2", course_id="c0", at=AT),
        ]
    ),
    "stream": lambda a: a.record_many(
        [ta.EnrollmentEvent(user_id=f"s{i}", course_id="c0", at=AT) for i in range(30)],
        batch_size=7,
        stream=True,
    ),
}


@pytest.mark.parametrize("unloaded", [False, True], ids=["code-loaded", "code-flushed"])
def test_a_full_server_refuses_every_write_and_nothing_changes(
    writer: Any, client: redis.Redis, redis_url: str, unloaded: bool
) -> None:
    _seed(writer)
    if unloaded:  # the refused write must also not get in while its code is (re)loaded
        client.function_flush()
        client.script_flush()
    before = dump_all(redis_url)
    with memory_full(client):
        for name, write in WRITES.items():
            with pytest.raises(ta.StoreFullError):
                write(writer)
            assert dump_all(redis_url) == before, name
    # Room again: the same writes apply.
    assert writer.record_enrollment("u1", "c0", at=AT) is True


def test_a_batch_stopped_by_a_full_server_says_nothing_was_applied(
    writer: Any, client: redis.Redis
) -> None:
    _seed(writer)
    with memory_full(client), pytest.raises(ta.BatchAbortedError) as raised:
        WRITES["stream"](writer)
    assert isinstance(raised.value, ta.StoreFullError)
    assert (raised.value.applied, raised.value.first_unapplied, raised.value.in_doubt) == (0, 0, 0)


# --- keys another program wrote with another type, or counters holding text ---------------------

BROKEN: dict[str, tuple[Callable[[redis.Redis], object], Callable[[Any], object]]] = {
    "completions set is a string": (
        lambda c: c.set("training:completions:c0", "x"),
        WRITES["complete"],
    ),
    "module completed set is a string": (
        lambda c: c.set("training:module:completed:c0:m1", "x"),
        WRITES["module completion"],
    ),
    "completion series is a set": (
        lambda c: c.sadd("training:completion:timeseries", "x"),
        WRITES["complete"],
    ),
    "day counter holds text": (
        lambda c: c.set("training:enrollment:date:2025-06-01", "many"),
        WRITES["enrol"],
    ),
    "course day hash field holds text": (
        lambda c: c.hset("training:agg:course:c0:enrollments", "2025-06-01", "x"),
        WRITES["enrol"],
    ),
    "course sums hold text": (
        lambda c: c.hset("training:agg:course:c0", "score_n", "x"),
        WRITES["progress"],
    ),
    "counter at the 64-bit limit": (
        lambda c: c.set("training:enrollment:date:2025-06-01", str(2**63 - 1)),
        WRITES["enrol"],
    ),
    "progress hash is a string": (
        lambda c: c.set("training:progress:u0:c0", "x"),
        WRITES["progress"],
    ),
    "claimed set is a list": (
        lambda c: c.rpush("training:certifications:status:claimed", "x"),
        WRITES["claim"],
    ),
    "claim sums hold text": (
        lambda c: c.hset("training:agg:credentials", "claimed", "x"),
        WRITES["claim"],
    ),
    "expiry index is a string": (
        lambda c: c.set("training:agg:certifications:expiry:issued", "x"),
        WRITES["issue"],
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_key_of_another_type_refuses_the_event_before_its_first_write(
    writer: Any, client: redis.Redis, redis_url: str, case: str
) -> None:
    _seed(writer)
    setup, write = BROKEN[case]
    setup(client)
    before = dump_all(redis_url)
    with pytest.raises(ta.StoreError, match="WRONGTYPE"):
        write(writer)
    assert dump_all(redis_url) == before


@pytest.mark.parametrize("case", ["completions set is a string", "course sums hold text"])
def test_in_a_batch_the_refused_event_writes_nothing_and_the_others_apply(
    writer: Any, client: redis.Redis, redis_url: str, case: str
) -> None:
    _seed(writer)
    BROKEN[case][0](client)
    refused = (
        ta.CompletionEvent(user_id="u1", course_id="c0", at=AT)
        if case.startswith("completions")
        else ta.ProgressEvent.model_validate({"progress": _progress("u0", 95)})
    )
    before = dump_all(redis_url)
    result = writer.record_many([refused, refused])
    assert (result.applied, result.unchanged, len(result.rejected)) == (0, 0, 2)
    assert dump_all(redis_url) == before
    result = writer.record_many([ta.EnrollmentEvent(user_id="u9", course_id="c1", at=AT), refused])
    assert (result.applied, [r.index for r in result.rejected]) == (1, [1])
    assert client.scard("training:enrollments:c1") == 1


@pytest.mark.parametrize("path", ["functions", "scripts"])
def test_a_full_server_refuses_catalog_writes(
    writer: Any, client: redis.Redis, redis_url: str
) -> None:
    # The catalog script is declared a write the same way (the legacy form has no guard yet:
    # catalog.lua does not begin with a write that changes nothing).
    writer.create_training_course(course("c1"))
    before = dump_all(redis_url)
    with memory_full(client):
        with pytest.raises(ta.StoreFullError):
            writer.create_training_course(course("c2"))
        with pytest.raises(ta.StoreFullError):
            writer.update_training_course("c1", {"duration": 60})
        assert dump_all(redis_url) == before
