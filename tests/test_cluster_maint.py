"""Maintenance on a real cluster (issue 14, "maint"): the layout record and its check, export
and import, each compared with the suite's single server, sync and asyncio.

The layout record (``training:meta:layout:{:meta}``) is written by a cluster store's first
write that changes it; a facade with another certificate bucket count is then refused before
it writes anything. The single-server layout has no record (it is the older system's).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster

import training_analytics as ta
from training_analytics.bench.mixed import MixedHistory, events
from training_analytics.cluster.local import ClusterControl

from .factories import NOW, Factory, course
from .stores import RAW_KEYS
from .test_cli_transfer import _env
from .test_transfer import export_all

FacadeMaker = Callable[..., Any]


def _clock() -> Any:
    return NOW


@pytest.fixture(params=["sync", "async"])
def make_cluster_facade(
    request: pytest.FixtureRequest,
    cluster: ClusterControl,
    cluster_client: redis.cluster.RedisCluster,
) -> Iterator[FacadeMaker]:
    """Build facades on the flushed cluster, sync or asyncio (called like the sync one)."""
    loops: list[asyncio.AbstractEventLoop] = []
    closers: list[Callable[[], None]] = []

    def build(**options: Any) -> Any:
        options.setdefault("clock", _clock)
        if request.param == "sync":
            return ta.TrainingAnalytics(cluster_client, **options)
        loop = asyncio.new_event_loop()
        loops.append(loop)
        seed = cluster.nodes()[0]
        aclient = redis.asyncio.cluster.RedisCluster(
            host=seed.host, port=seed.port, password=cluster.password
        )
        facade = ta.AsyncTrainingAnalytics(aclient, **options)
        closers.append(lambda: loop.run_until_complete(aclient.aclose()))

        class View:
            keys = facade.keys

            def __getattr__(self, name: str) -> Any:
                method = getattr(facade, name)
                return lambda *a, **k: loop.run_until_complete(method(*a, **k))

        return View()

    yield build
    for close in closers:
        close()
    for loop in loops:
        loop.close()


def _dump(client: redis.cluster.RedisCluster) -> dict[str, Any]:
    """Every key of every primary with its type and value (what "nothing written" compares)."""
    found: dict[str, Any] = {}
    for key in client.scan_iter(target_nodes=redis.cluster.RedisCluster.PRIMARIES):
        kind = client.type(key)
        if kind == "string":
            found[key] = client.get(key)
        elif kind == "hash":
            found[key] = client.hgetall(key)
        elif kind == "set":
            found[key] = sorted(client.smembers(key))
        elif kind == "zset":
            found[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            found[key] = kind
    return found


# --- (a) the layout record ----------------------------------------------------------------------


def test_the_first_write_records_the_layout(
    make_cluster_facade: FacadeMaker, cluster_client: redis.cluster.RedisCluster
) -> None:
    facade = make_cluster_facade()
    assert facade.get_recorded_layout() is None
    # A refused write records nothing.
    with pytest.raises(ta.CertificationNotFoundError):
        facade.update_certification_status("nope", "claimed")
    assert cluster_client.get("training:meta:layout:{:meta}") is None
    facade.record_enrollment("u1", "c1")
    assert facade.get_recorded_layout() == {"layout": "cluster", "certBuckets": 256}
    assert json.loads(str(cluster_client.get("training:meta:layout:{:meta}"))) == {
        "layout": "cluster",
        "certBuckets": 256,
    }
    assert cluster_client.get("training:meta:time-zone:{:meta}") == "UTC"


def test_another_bucket_count_is_refused_and_writes_nothing(
    make_cluster_facade: FacadeMaker, cluster_client: redis.cluster.RedisCluster
) -> None:
    make_cluster_facade().record_enrollment("u1", "c1")
    before = _dump(cluster_client)
    other = make_cluster_facade(cert_buckets=16)
    cert = {
        "id": "cert-1",
        "userId": "u1",
        "courseId": "c1",
        "courseName": {"en": "C1"},
        "issuedAt": "2025-06-01T10:00:00.000Z",
        "status": "issued",
        "score": 90,
    }
    with pytest.raises(ta.LayoutMismatchError, match="256 certificate buckets"):
        other.issue_training_certification(cert)
    with pytest.raises(ta.LayoutMismatchError):
        other.record_many([ta.EnrollmentEvent(user_id="u2", course_id="c1")])
    with pytest.raises(ta.LayoutMismatchError):
        other.record_each([{"kind": "enrollment", "userId": "u2", "courseId": "c1"}])
    assert _dump(cluster_client) == before
    # The store's own bucket count writes.
    assert make_cluster_facade().issue_training_certification(cert) is not None


def test_a_corrupt_layout_record_is_a_store_error(
    make_cluster_facade: FacadeMaker, cluster_client: redis.cluster.RedisCluster
) -> None:
    cluster_client.set("training:meta:layout:{:meta}", "not json")
    with pytest.raises(ta.StoreError, match="layout record"):
        make_cluster_facade().record_enrollment("u1", "c1")
    assert cluster_client.scard("training:enrollments:{c1}") == 0


@RAW_KEYS
def test_the_single_server_layout_records_nothing(
    make_analytics: Factory, client: redis.Redis
) -> None:
    analytics = make_analytics()
    analytics.record_enrollment("u1", "c1")
    assert analytics.get_recorded_layout() is None
    assert not [key for key in client.scan_iter("training:meta:layout*")]


# --- (b) export and import ----------------------------------------------------------------------

SMALL = MixedHistory(pairs=150, seed=5)


def _canonical(records: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(record, sort_keys=True) for record in records)


def _load(facade: Any, history: MixedHistory) -> None:
    for course_id in history.course_ids():
        facade.create_training_course(course(course_id, modules=history.modules))
    facade.record_many(list(events(history)), stream=True)


def test_export_on_a_cluster_gives_the_single_servers_records(
    make_cluster_facade: FacadeMaker, analytics: Any
) -> None:
    on_cluster = make_cluster_facade()
    _load(on_cluster, SMALL)
    _load(analytics, SMALL)
    exported = export_all(on_cluster, 50)
    assert exported, "nothing exported"
    assert _canonical(exported) == _canonical(export_all(analytics, 50))
    # Every section is there, and each learner's events of a course keep their time order.
    kinds = {record.get("kind", "progress") for record in exported}
    assert {"course", "enrollment", "completion", "module_start", "progress"} <= kinds
    assert "certification_issued" in kinds


def test_import_into_a_cluster_answers_as_the_single_server(
    make_cluster_facade: FacadeMaker,
    analytics: Any,
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    _load(analytics, SMALL)
    records = export_all(analytics, 64)
    on_cluster = make_cluster_facade()
    result = on_cluster.import_records(records)
    assert result.rejected == 0
    for course_id in SMALL.course_ids():
        assert on_cluster.get_course_detailed_analytics(
            course_id
        ) == analytics.get_course_detailed_analytics(course_id)
        assert on_cluster.get_course_module_dropoff_rates(
            course_id
        ) == analytics.get_course_module_dropoff_rates(course_id)
    # Imported again: nothing changes (the write path is idempotent; a progress record is
    # saved again and reports "applied", as on one server, with the same figures).
    before = _dump(cluster_client)
    again = on_cluster.import_records(records)
    applied = [
        record.get("kind")
        for record, outcome in zip(records, again.results, strict=True)
        if outcome.status == "applied"
    ]
    assert set(applied) <= {"progress"}
    after = _dump(cluster_client)
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    assert {key for key in changed if not key.startswith("training:version:")} == set()
    assert _canonical(export_all(on_cluster, 64)) == _canonical(records)


def test_import_lines_streams_into_a_cluster(
    make_cluster_facade: FacadeMaker, analytics: Any
) -> None:
    _load(analytics, SMALL)
    records = export_all(analytics, 64)
    on_cluster = make_cluster_facade()
    tally = on_cluster.import_lines(enumerate(records, 1), ta.ImportTally(), batch_size=100)
    assert tally.rejected == 0
    assert tally.settled == len(records)
    assert _canonical(export_all(on_cluster, 64)) == _canonical(records)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training_analytics", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        check=False,
    )


def test_cli_export_and_import_jobs_on_a_cluster(
    client: redis.Redis,
    redis_url: str,
    cluster_url: str,
    cluster_client: redis.cluster.RedisCluster,
    tmp_path: Path,
) -> None:
    analytics = ta.TrainingAnalytics(client, clock=_clock)
    _load(analytics, SMALL)
    single_file = tmp_path / "single.jsonl"
    done = _cli("export", "--url", redis_url, "-o", str(single_file))
    assert done.returncode == 0, done.stderr
    done = _cli("import", "--url", cluster_url, str(single_file), "--jobs", "2", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["rejected"] == 0
    cluster_file = tmp_path / "cluster.jsonl"
    done = _cli("export", "--url", cluster_url, "-o", str(cluster_file))
    assert done.returncode == 0, done.stderr

    def lines(path: Path) -> list[str]:
        return _canonical([json.loads(line) for line in path.read_text().splitlines()])

    assert lines(cluster_file) == lines(single_file)
    on_cluster = ta.TrainingAnalytics(cluster_client, clock=_clock)
    for course_id in SMALL.course_ids():
        assert on_cluster.get_course_detailed_analytics(
            course_id
        ) == analytics.get_course_detailed_analytics(course_id)


# --- (b) reindex ---------------------------------------------------------------------------------


def _without_versions(state: dict[str, Any]) -> dict[str, Any]:
    """The state without version counters; a derived counter at 0 reads like an absent one
    (the write path leaves a figure out until it moves, reindex writes every one)."""
    found: dict[str, Any] = {}
    for key, value in state.items():
        if key.startswith("training:version:"):
            continue
        found[key] = (
            {field: figure for field, figure in value.items() if figure != "0"}
            if isinstance(value, dict)
            else value
        )
    return found


def test_reindex_on_a_cluster_changes_no_derived_key(
    make_cluster_facade: FacadeMaker, cluster_client: redis.cluster.RedisCluster
) -> None:
    on_cluster = make_cluster_facade()
    _load(on_cluster, SMALL)
    before = _without_versions(_dump(cluster_client))
    report = on_cluster.reindex()
    assert report.courses == len(SMALL.course_ids())
    assert report.certifications > 0
    after = _without_versions(_dump(cluster_client))
    # The store-wide marker says a reindex (or migrate) covered the whole store.
    assert after.pop("training:agg:schema:{:meta}") == "1"
    assert after == before


def test_reindex_rebuilds_a_cluster_store_without_derived_keys(
    make_cluster_facade: FacadeMaker,
    analytics: Any,
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    on_cluster = make_cluster_facade()
    _load(on_cluster, SMALL)
    _load(analytics, SMALL)
    # Base keys only (what a copy of the older system's keys would leave): every derived key,
    # every tag's marker and the course registry gone.
    for key in list(cluster_client.scan_iter(target_nodes=redis.cluster.RedisCluster.PRIMARIES)):
        if key.startswith("training:agg:"):
            cluster_client.delete(key)
    fresh = make_cluster_facade()
    course_id = SMALL.course_ids()[0]
    with pytest.raises(ta.NotIndexedError):
        fresh.get_course_detailed_analytics(course_id)
    with pytest.raises(ta.NotIndexedError):
        fresh.record_enrollment("late", course_id)
    fresh.reindex()
    assert cluster_client.smembers("training:agg:courses:{:meta}") >= set(SMALL.course_ids())
    for course_id in SMALL.course_ids():
        assert fresh.get_course_detailed_analytics(
            course_id
        ) == analytics.get_course_detailed_analytics(course_id)
    # Writes go on, figures exact.
    fresh.record_enrollment("late", course_id)
    analytics.record_enrollment("late", course_id)
    assert fresh.get_course_detailed_analytics(
        course_id
    ) == analytics.get_course_detailed_analytics(course_id)


def test_an_export_position_naming_a_gone_node_starts_the_walk_again(
    make_cluster_facade: FacadeMaker, cluster: ClusterControl
) -> None:
    on_cluster = make_cluster_facade()
    on_cluster.save_user_course_progress(
        {
            "userId": "u1",
            "courseId": "c1",
            "status": "in_progress",
            "moduleProgress": [],
            "overallScore": 50,
            "startedAt": "2025-06-01T10:00:00.000Z",
            "lastAccessedAt": "2025-06-01T10:00:00.000Z",
            "totalTimeSpentMinutes": 5,
        }
    )
    # A failed-over or removed primary: its name is in a saved position, not in the cluster.
    gone = ta.ExportCursor(section="progress", nodes=["127.0.0.1:1"], scan="17")
    page = on_cluster.export_page(gone, count=100)
    assert page.records == []
    assert page.next is not None
    primaries = sorted(f"{node.host}:{node.port}" for node in cluster.primaries())
    assert (page.next.nodes, page.next.scan) == (primaries, "0")
    records = []
    cursor = page.next
    while cursor is not None and cursor.section == "progress":
        page = on_cluster.export_page(cursor, count=100)
        records += page.records
        cursor = page.next
    assert [r["progress"]["userId"] for r in records] == ["u1"]
