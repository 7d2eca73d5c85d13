"""The CLI on a cluster URL (``--url redis+cluster://...`` or ``REDIS_URL``), against the
session's cluster: the commands work there (API keys, xAPI imports, the demo through the
cluster's write path), a refusal stops with the typed error's message, and no password or key
is printed where it should not be."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster
from typer.testing import CliRunner, Result

import training_analytics as ta
from training_analytics.cli import EXIT_REFUSED, app
from training_analytics.cluster.local import LocalCluster
from training_analytics.demo import DEMO_COURSE_IDS, load_demo

from . import xapi_statements as x
from .cluster import _port_range
from .factories import certification, course
from .test_statements import prepared, real_world

runner = CliRunner()
SECRET = "s3cret-Cli-Pa55"
LEARNERS = 40


def output_of(result: Result) -> str:
    return result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_keys_create_list_and_revoke_on_a_cluster(
    cluster_url: str, cluster_client: redis.cluster.RedisCluster
) -> None:
    created = runner.invoke(
        app, ["keys", "create", "--role", "ingest", "--name", "ci", "--url", cluster_url]
    )
    assert created.exit_code == 0, output_of(created)
    key = created.stdout.strip()
    assert key.startswith("ta_") and len(key) == 46
    assert key not in created.stderr
    facade = ta.TrainingAnalytics(cluster_client)
    info = facade.verify_api_key(key)
    assert info is not None and (info.name, info.role) == ("ci", "ingest")
    listed = runner.invoke(app, ["keys", "list"], env={"REDIS_URL": cluster_url})
    assert listed.exit_code == 0, output_of(listed)
    assert "ci" in listed.stdout and "ingest" in listed.stdout
    assert key not in output_of(listed)
    taken = runner.invoke(
        app, ["keys", "create", "--role", "viewer", "--name", "ci", "--url", cluster_url]
    )
    assert taken.exit_code == EXIT_REFUSED
    assert "ApiKeyExistsError" in output_of(taken)
    revoked = runner.invoke(app, ["keys", "revoke", "ci", "--url", cluster_url])
    assert revoked.exit_code == 0, output_of(revoked)
    assert facade.verify_api_key(key) is None
    assert not facade.has_api_keys()


#: Commands that read global figures, rebuild or move the whole store: they run on a cluster.
GLOBAL_COMMANDS = [
    ["report"],
    ["report", "--json"],
    ["reindex"],
    ["export", "-o", "{tmp}/dump.jsonl"],
    ["import", "{tmp}/events.jsonl"],
]


@pytest.mark.parametrize("args", GLOBAL_COMMANDS)
def test_a_command_over_the_whole_store_runs_on_a_cluster(
    cluster_url: str, cluster_client: redis.cluster.RedisCluster, tmp_path: Path, args: list[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"kind": "enrollment", "userId": "u1", "courseId": "c1"}) + "\n")
    ta.TrainingAnalytics(cluster_client).record_enrollment("u0", "c1")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = runner.invoke(app, [*argv, "--url", cluster_url])
    assert result.exit_code == 0, output_of(result)
    assert "Traceback" not in output_of(result)


def _data_keys(cluster_client: redis.cluster.RedisCluster) -> list[str]:
    return sorted(str(k) for k in cluster_client.scan_iter(match="training:*"))


def test_import_of_xapi_statements_on_a_cluster(
    cluster_url: str,
    cluster_client: redis.cluster.RedisCluster,
    client: redis.Redis,
    tmp_path: Path,
) -> None:
    statements = real_world()
    path = tmp_path / "statements.jsonl"
    path.write_text("\n".join(json.dumps(s) for s in statements) + "\n")
    result = runner.invoke(
        app, ["import", str(path), "--format", "xapi", "--json", "--url", cluster_url]
    )
    assert result.exit_code == 0, output_of(result)
    single = ta.TrainingAnalytics(client)
    single.record_statements(prepared(statements))
    on_cluster = ta.TrainingAnalytics(cluster_client)
    for course_id in (x.EDX_COURSE_ID, "safety-101"):
        assert on_cluster.get_course_detailed_analytics(
            course_id
        ) == single.get_course_detailed_analytics(course_id)


def test_demo_loads_through_the_cluster_write_path(
    cluster_url: str, cluster_client: redis.cluster.RedisCluster, client: redis.Redis
) -> None:
    loaded = runner.invoke(app, ["demo", "--learners", str(LEARNERS), "--url", cluster_url])
    text = output_of(loaded)
    assert "Loaded 8 courses" in text
    assert loaded.exit_code == 0, text
    single = ta.TrainingAnalytics(client)
    load_demo(single, learners=LEARNERS)
    on_cluster = ta.TrainingAnalytics(cluster_client)
    assert DEMO_COURSE_IDS
    for course_id in DEMO_COURSE_IDS:
        assert on_cluster.get_course_detailed_analytics(
            course_id
        ) == single.get_course_detailed_analytics(course_id)
    marker = cluster_client.hgetall(on_cluster.keys.demo_marker())
    assert marker["state"] == "complete" and marker["learners"] == str(LEARNERS)

    # The cluster holds data now: a second demo is refused unless asked to reset.
    again = runner.invoke(app, ["demo", "--learners", str(LEARNERS), "--url", cluster_url])
    assert again.exit_code == EXIT_REFUSED
    assert "already holds training data" in " ".join(output_of(again).split())
    reset = runner.invoke(
        app, ["demo", "--learners", "20", "--reset", "--seed", "3", "--url", cluster_url]
    )
    assert "Cleared the previous training data" in output_of(reset)
    assert cluster_client.hget(on_cluster.keys.demo_marker(), "learners") == "20"
    assert cluster_client.hget(on_cluster.keys.demo_marker(), "seed") == "3"


def test_holds_training_data_sees_each_kind_of_data(
    cluster_client: redis.cluster.RedisCluster, client: redis.Redis
) -> None:
    """What the demo asks before it writes, on a cluster and on one server alike."""
    for store in (cluster_client, client):
        facade = ta.TrainingAnalytics(store)
        writes: list[Any] = [
            lambda f: f.record_enrollment("u1", "c1"),
            lambda f: f.create_training_course(course("c2")),
            lambda f: f.issue_training_certification(certification("cert-1")),
        ]
        for write in writes:
            _flush(store)
            assert not facade.holds_training_data()
            write(facade)
            assert facade.holds_training_data()
        _flush(store)
        facade.create_api_key("k", "admin")  # the service's own keys are not training data
        assert not facade.holds_training_data()


def _flush(store: Any) -> None:
    if isinstance(store, redis.cluster.RedisCluster):
        store.flushall(target_nodes=redis.cluster.RedisCluster.PRIMARIES)
    else:
        store.flushdb()


def test_a_password_in_a_cluster_url_is_never_printed(tmp_path: Path) -> None:
    with LocalCluster(2, 0, port_range=_port_range(), password=SECRET) as guarded:
        url = f"redis+cluster://default:{SECRET}@{guarded.seeds[0]}"
        created = runner.invoke(app, ["keys", "create", "--role", "admin", "--url", url])
        assert created.exit_code == 0, output_of(created)
        assert SECRET not in output_of(created)
        report = runner.invoke(app, ["report", "--url", url])
        assert SECRET not in output_of(report)
        assert report.exit_code == 0, output_of(report)
        wrong = runner.invoke(app, ["keys", "list", "--url", url.replace(SECRET, "wrong")])
        assert wrong.exit_code != 0
        assert "***" in output_of(wrong)
