"""API keys and xAPI statements on a real cluster (three primaries, three replicas: the
``cluster`` fixture), sync and asyncio, compared with the same operations on the suite's single
server: the same answers, the keys where docs/architecture.md's plan puts them (``{:service}``,
``{:xapi:NNN}``), and one MGET and one script call per statement bucket."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster
from redis.crc import key_slot

import training_analytics as ta
from training_analytics import courses
from training_analytics._context import Context
from training_analytics._protocol import Batch, Command, ScriptCall
from training_analytics.cluster.executor import run_on_cluster
from training_analytics.cluster.local import ClusterControl
from training_analytics.errors import StatementConflictError
from training_analytics.keys import TrainingKeys
from training_analytics.statements import DEFAULT_RETENTION_SECONDS, record_statements
from training_analytics.xapi.files import read_statements
from training_analytics.xapi.intake import PreparedStatement

from . import xapi_statements as x
from .factories import NOW, course
from .test_statements import UUIDS, expected_events, prepared, real_world


@pytest.fixture(params=["sync", "async"])
def on_cluster(
    request: pytest.FixtureRequest,
    cluster: ClusterControl,
    cluster_client: redis.cluster.RedisCluster,
) -> Iterator[Any]:
    """A facade on the flushed cluster with the suite's clock, sync or asyncio (called like the
    sync one)."""
    clock = [NOW]
    if request.param == "sync":
        sync = ta.TrainingAnalytics(cluster_client, clock=lambda: clock[0])
        sync.__dict__["test_clock"] = clock
        yield sync
        return
    loop = asyncio.new_event_loop()
    seed = cluster.nodes()[0]
    aclient = redis.asyncio.cluster.RedisCluster(
        host=seed.host, port=seed.port, password=cluster.password
    )
    facade = ta.AsyncTrainingAnalytics(aclient, clock=lambda: clock[0])

    class View:
        keys = facade.keys
        test_clock = clock

        def __getattr__(self, name: str) -> Any:
            method = getattr(facade, name)
            return lambda *a, **k: loop.run_until_complete(method(*a, **k))

    yield View()
    loop.run_until_complete(aclient.aclose())
    loop.close()


@pytest.fixture
def single(client: redis.Redis) -> ta.TrainingAnalytics:
    """The same operations on the suite's (flushed) single server."""
    return ta.TrainingAnalytics(client, clock=lambda: NOW)


def _cluster_keys(client: redis.cluster.RedisCluster) -> dict[str, Any]:
    """Every key of the cluster (its primaries) with its type."""
    return {str(key): client.type(key) for key in client.scan_iter(match="*", count=1000)}


# --- API keys ----------------------------------------------------------------------------------


def test_api_keys_live_in_the_service_slot_and_answer_as_on_one_server(
    on_cluster: Any, single: ta.TrainingAnalytics, cluster_client: redis.cluster.RedisCluster
) -> None:
    for facade in (on_cluster, single):
        facade.create_api_key("ci", "ingest")
        facade.create_api_key("dash", "viewer")
    created = on_cluster.create_api_key("ops", "admin")
    digest = hashlib.sha256(created.key.encode()).hexdigest()
    assert cluster_client.hget("training:service:apikeys:{:service}", "ops") == digest
    assert cluster_client.hgetall(f"training:service:apikey:{{:service}}:{digest}") == {
        "name": "ops",
        "role": "admin",
        "createdAt": "2025-06-15T12:00:00.000Z",
    }
    keys = _cluster_keys(cluster_client)
    assert all("{:service}" in key for key in keys)
    assert len({_slot(key) for key in keys}) == 1
    assert created.key not in repr(
        {key: cluster_client.hgetall(key) for key in keys if keys[key] == "hash"}
    )
    single.create_api_key("ops", "admin")
    assert on_cluster.list_api_keys() == single.list_api_keys()
    assert on_cluster.has_api_keys() and single.has_api_keys()
    with pytest.raises(ta.ApiKeyExistsError):
        on_cluster.create_api_key("ops", "viewer")
    with pytest.raises(ta.InvalidIdError):
        on_cluster.create_api_key("a:b", "viewer")


def test_a_key_is_verified_its_use_recorded_and_revoked_at_once(
    on_cluster: Any, cluster_client: redis.cluster.RedisCluster
) -> None:
    key = on_cluster.create_api_key("temp", "viewer").key
    on_cluster.test_clock[0] = NOW + timedelta(hours=1)
    info = on_cluster.verify_api_key(key)
    assert info is not None and (info.name, info.role) == ("temp", "viewer")
    assert info.last_used_at == "2025-06-15T13:00:00.000Z"
    assert on_cluster.list_api_keys()[0].last_used_at == "2025-06-15T13:00:00.000Z"
    assert on_cluster.verify_api_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert on_cluster.verify_api_key("nonsense") is None
    on_cluster.revoke_api_key("temp")
    assert on_cluster.verify_api_key(key) is None
    assert not on_cluster.has_api_keys()
    assert on_cluster.list_api_keys() == []
    assert _cluster_keys(cluster_client) == {}  # a revoked key's record is not recreated
    with pytest.raises(ta.ApiKeyNotFoundError):
        on_cluster.revoke_api_key("temp")


def test_a_read_with_a_key_runs_on_the_courses_slot_and_checks_the_key(
    on_cluster: Any, single: ta.TrainingAnalytics
) -> None:
    for facade in (on_cluster, single):
        facade.create_training_course(course("c1", modules=2))
        facade.record_enrollment("u1", "c1")
        facade.record_module_start("u1", "c1", "m1")
        facade.record_completion("u2", "c1")
    viewer = on_cluster.create_api_key("v", "viewer").key
    read = partial(courses.get_course_detailed_analytics, course_id="c1")
    outcome = on_cluster.read_with_api_key(viewer, "viewer", read)
    assert outcome.allowed and outcome.info.name == "v"
    assert outcome.value == single.get_course_detailed_analytics("c1")
    refused = on_cluster.read_with_api_key(viewer, "admin", read)
    assert (refused.allowed, refused.value) == (False, None)
    unknown = on_cluster.read_with_api_key("ta_" + "x" * 43, "viewer", read)
    assert (unknown.info, unknown.allowed) == (None, False)


def test_a_keyed_read_of_a_global_figure_runs_on_a_cluster(
    on_cluster: Any, cluster_client: redis.cluster.RedisCluster
) -> None:
    """read_with_api_key hands its read to the cluster executor too: a global read (summed over
    courses and buckets) answers under the key's check."""
    key = on_cluster.create_api_key("v", "viewer").key
    outcome = on_cluster.read_with_api_key(key, "viewer", courses.get_training_overview_metrics)
    assert outcome.allowed and outcome.value == on_cluster.get_training_overview_metrics()


def test_an_applications_read_across_hash_slots_is_cluster_unsupported(
    on_cluster: Any, single: ta.TrainingAnalytics
) -> None:
    """What still raises ClusterUnsupportedError: a read of the application's own, handed to
    ``read_with_api_key``, whose one call names keys in two hash slots (the cluster answers
    CROSSSLOT). The same read answers on one server."""

    def across_slots(ctx: Context) -> Any:
        replies = yield Batch((Command(("MGET", "{a}x", "{b}y")),))
        return replies[0]

    key = on_cluster.create_api_key("app", "viewer").key
    with pytest.raises(ta.ClusterUnsupportedError, match="several hash slots"):
        on_cluster.read_with_api_key(key, "viewer", across_slots)
    plain = single.create_api_key("app", "viewer").key
    assert single.read_with_api_key(plain, "viewer", across_slots).value == [None, None]


# --- xAPI statements ---------------------------------------------------------------------------


def test_statements_answer_as_on_one_server(
    on_cluster: Any, single: ta.TrainingAnalytics, cluster_client: redis.cluster.RedisCluster
) -> None:
    statements = real_world()
    result = on_cluster.record_statements(prepared(statements))
    assert result == single.record_statements(prepared(statements))
    assert (result.new, result.ignored, result.rejected, result.raced) == (21, 6, [], [])
    assert result.applied + result.unchanged == len(expected_events())
    for course_id in (x.EDX_COURSE_ID, "safety-101"):
        assert on_cluster.get_course_detailed_analytics(
            course_id
        ) == single.get_course_detailed_analytics(course_id)
        assert on_cluster.get_course_enrollments(course_id) == single.get_course_enrollments(
            course_id
        )
        assert on_cluster.get_course_completions(course_id) == single.get_course_completions(
            course_id
        )
    assert on_cluster.get_training_certification("CERT-42") == single.get_training_certification(
        "CERT-42"
    )
    # Every id remembered in its bucket, with its digest and the retention.
    for statement in prepared(statements):
        key = on_cluster.keys.xapi_statement(statement.id)
        assert key.startswith("training:xapi:statement:{:xapi:")
        assert cluster_client.get(key) == statement.digest
        assert 0 < cluster_client.ttl(key) <= 90 * 24 * 3600
    again = on_cluster.record_statements(prepared(statements))
    assert (again.new, again.duplicates, again.applied) == (0, 21, 0)


def test_a_conflict_in_any_bucket_refuses_the_whole_batch(
    on_cluster: Any, cluster_client: redis.cluster.RedisCluster
) -> None:
    on_cluster.record_statements(prepared(real_world()[:1]))
    before = _cluster_keys(cluster_client)
    changed = x.edx_enrollment(UUIDS[0], x.EDX_LEARNERS[1], "2025-03-01T10:00:00Z")
    fresh = [
        x.edx_enrollment(UUIDS[40 + n], f"someone-{n}", "2025-03-01T10:00:00Z") for n in range(8)
    ]
    tags = {
        on_cluster.keys.slot_tag(on_cluster.keys.xapi_statement(UUIDS[40 + n])) for n in range(8)
    }
    assert len(tags) > 1
    with pytest.raises(StatementConflictError, match=UUIDS[0]):
        on_cluster.record_statements(prepared([*fresh, changed]))
    assert _cluster_keys(cluster_client) == before
    assert on_cluster.get_course_enrollment_count(x.EDX_COURSE_ID) == 1


def test_an_id_taken_meanwhile_in_one_bucket_is_reported(
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    lib = ta.TrainingAnalytics(cluster_client)
    statements = prepared(real_world()[:6])
    key = lib.keys.xapi_statement(UUIDS[4])
    op = record_statements(lib.context, statements)
    result = run_on_cluster(
        _interleaved(op, lambda: cluster_client.set(key, "f" * 64)), cluster_client
    )
    assert result.raced == [UUIDS[4]]
    assert cluster_client.get(key) == "f" * 64
    assert lib.get_course_enrollment_count(x.EDX_COURSE_ID) == 3


def _interleaved(op: Any, between: Any) -> Any:
    """``op`` with ``between()`` run after its first round trip (another writer's moment)."""
    request = next(op)
    replies = yield request
    between()
    while True:
        try:
            request = op.send(replies)
        except StopIteration as done:
            return done.value
        replies = yield request


def test_import_statements_answers_as_on_one_server(
    on_cluster: Any, single: ta.TrainingAnalytics, tmp_path: Any
) -> None:
    statements = real_world()
    lines = [json.dumps(s) for s in statements]
    lines.insert(3, "{not json")
    lines.append(json.dumps({**statements[3], "timestamp": "2025-04-01T00:00:00Z"}))  # conflict
    path = tmp_path / "statements.jsonl"
    path.write_text("\n".join(lines) + "\n")
    summaries = []
    for facade in (on_cluster, single):
        with path.open("rb") as stream:
            summaries.append(facade.import_statements(read_statements(stream), batch_size=5))
    assert summaries[0] == summaries[1]
    assert [r.error for r in summaries[0].rejected] == [
        "InvalidStatementError",
        "StatementConflictError",
    ]
    assert on_cluster.get_course_detailed_analytics(
        x.EDX_COURSE_ID
    ) == single.get_course_detailed_analytics(x.EDX_COURSE_ID)


# --- the command lists (pure) ------------------------------------------------------------------


def _ignored(count: int) -> list[PreparedStatement]:
    """Statements that map to no event: the op goes from the MGETs straight to the ids."""
    return [PreparedStatement(UUIDS[n], f"{n:064x}", None, "no rule") for n in range(count)]


def _slot(key: object) -> int:
    assert isinstance(key, str)
    return key_slot(key.encode())


def _commands(request: object) -> list[Command]:
    assert isinstance(request, Batch)
    assert all(isinstance(c, Command) for c in request.calls)
    return [c for c in request.calls if isinstance(c, Command)]


def _scripts(request: object) -> list[ScriptCall]:
    assert isinstance(request, Batch)
    assert all(isinstance(c, ScriptCall) for c in request.calls)
    return [c for c in request.calls if isinstance(c, ScriptCall)]


def test_one_mget_and_one_script_call_per_bucket_on_a_cluster() -> None:
    keys = TrainingKeys(layout="cluster")
    statements = _ignored(40)
    op = record_statements(Context(keys=keys), statements)
    mgets = _commands(next(op))
    buckets = {keys.slot_tag(keys.xapi_statement(s.id)) for s in statements}
    assert len(buckets) > 10
    assert len(mgets) == len(buckets)
    assert all(c.args[0] == "MGET" for c in mgets)
    assert all(len({_slot(k) for k in c.args[1:]}) == 1 for c in mgets)
    assert sorted(str(k) for c in mgets for k in c.args[1:]) == sorted(
        keys.xapi_statement(s.id) for s in statements
    )
    remember = _scripts(op.send([[None] * (len(c.args) - 1) for c in mgets]))  # all new
    assert len(remember) == len(buckets)
    digests = {keys.xapi_statement(s.id): s.digest for s in statements}
    for call in remember:
        assert len({_slot(k) for k in call.keys}) == 1
        assert call.args == (DEFAULT_RETENTION_SECONDS, *(digests[str(k)] for k in call.keys))
    # The second statement's id was taken meanwhile: reported, whatever its bucket.
    taken = keys.xapi_statement(UUIDS[1])
    replies = [[2 if k == taken else 0 for k in c.keys] for c in remember]
    with pytest.raises(StopIteration) as done:
        op.send(replies)
    assert done.value.value.raced == [UUIDS[1]]
    assert done.value.value.new == 40


def test_one_mget_and_one_script_call_on_a_single_server() -> None:
    keys = TrainingKeys()
    statements = _ignored(40)
    op = record_statements(Context(keys=keys), statements)
    every = tuple(keys.xapi_statement(s.id) for s in statements)
    assert _commands(next(op)) == [Command(("MGET", *every))]
    [remember] = _scripts(op.send([[None] * 40]))
    assert remember.keys == every
    assert remember.args == (DEFAULT_RETENTION_SECONDS, *(s.digest for s in statements))
