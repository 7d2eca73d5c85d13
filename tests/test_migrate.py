"""``migrate`` (issue 14 item 3): a single-server store (this library's, or the older system's,
reindexed or not) into the local cluster and back, answers compared; an interrupted run resumed;
refusals.

The core (``migrate.migration``) runs sync and asyncio on facades; the command runs in a
subprocess (it is killed midway in one test).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

import training_analytics as ta
from training_analytics import migrate
from training_analytics.bench.mixed import MixedHistory, events
from training_analytics.cluster.local import ClusterControl

from . import seed_writer
from .factories import NOW, course
from .test_cli_transfer import _env
from .test_seed_compat import LEGAL, seed_store  # noqa: F401 - the fixture
from .test_transfer import export_all

SMALL = MixedHistory(pairs=120, seed=3)
PER_COURSE = {
    "course detailed analytics",
    "module drop-off rates",
    "module funnel",
    "enrolment counts",
    "completion counts",
    "learner progress",
    "certificates by id",
}


def _clock() -> Any:
    return NOW


class Pair:
    """Two facades (source and target) driven the same way, sync or asyncio."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.loop = asyncio.new_event_loop() if mode == "async" else None
        self._close: list[Callable[[], Any]] = []

    def single(self, url: str, **options: Any) -> Any:
        options.setdefault("clock", _clock)
        if self.loop is None:
            client = redis.Redis.from_url(url, decode_responses=True)
            self._close.append(client.close)
            return ta.TrainingAnalytics(client, **options)
        aclient = redis.asyncio.Redis.from_url(url)
        self._close.append(lambda: self._run(aclient.aclose()))
        return ta.AsyncTrainingAnalytics(aclient, **options)

    def cluster(self, control: ClusterControl, **options: Any) -> Any:
        options.setdefault("clock", _clock)
        seed = control.nodes()[0]
        if self.loop is None:
            client = redis.cluster.RedisCluster(
                host=seed.host, port=seed.port, password=control.password, decode_responses=True
            )
            self._close.append(client.close)
            return ta.TrainingAnalytics(client, **options)
        aclient = redis.asyncio.cluster.RedisCluster(
            host=seed.host, port=seed.port, password=control.password
        )
        self._close.append(lambda: self._run(aclient.aclose()))
        return ta.AsyncTrainingAnalytics(aclient, **options)

    def _run(self, awaitable: Any) -> Any:
        assert self.loop is not None
        return self.loop.run_until_complete(awaitable)

    def call(self, facade: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(facade, name)(*args, **kwargs)
        return self._run(result) if self.loop is not None else result

    def migrate(self, source: Any, target: Any, steps: Any) -> Any:
        if self.loop is None:
            return migrate.run_migration(source, target, steps)
        return self._run(migrate.arun_migration(source, target, steps))

    def close(self) -> None:
        for close in self._close:
            close()
        if self.loop is not None:
            self.loop.close()


@pytest.fixture(params=["sync", "async"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    made = Pair(request.param)
    yield made
    made.close()


def _load(pair: Pair, facade: Any, history: MixedHistory) -> None:
    for course_id in history.course_ids():
        pair.call(facade, "create_training_course", course(course_id, modules=history.modules))
    pair.call(facade, "record_many", list(events(history)))


def _rows(report: Any) -> dict[str, Any]:
    comparisons = report if isinstance(report, list) else report.comparisons
    return {row.answer: row for row in comparisons}


def _canonical(records: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(record, sort_keys=True) for record in records)


def _export(pair: Pair, facade: Any) -> list[str]:
    records: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = pair.call(facade, "export_page", cursor, count=200)
        records += page.records
        if page.next is None:
            return _canonical(records)
        cursor = page.next


def test_a_library_store_into_the_cluster_and_back(
    pair: Pair,
    client: redis.Redis,
    redis_url: str,
    cluster: ClusterControl,
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    source = pair.single(redis_url)
    _load(pair, source, SMALL)
    on_cluster = pair.cluster(cluster)
    report = pair.migrate(source, on_cluster, migrate.migration("one server"))
    assert report.checkpoint.cursor is None
    assert report.checkpoint.rejected == 0
    assert report.equal, _rows(report)
    rows = _rows(report)
    for name in PER_COURSE:
        assert rows[name].status == "equal", rows[name]
        assert rows[name].compared > 0
    # Global reads run on a cluster only once its reads exist: listed, never failed.
    for name, row in rows.items():
        if name not in PER_COURSE:
            assert row.status in ("equal", "not compared"), row
    assert _export(pair, on_cluster) == _export(pair, source)
    assert cluster_client.get("training:meta:layout:{:meta}") is not None

    # Back into one server, under another prefix: every answer, the global ones included,
    # equals the original's.
    back = pair.single(redis_url, prefix="back:")
    report = pair.migrate(on_cluster, back, migrate.migration("the cluster"))
    assert report.equal
    both = pair.migrate(source, back, migrate.compare(*_range(report)))
    assert {row.status for row in both} == {"equal"}, [r for r in both if r.status != "equal"]
    assert {row.answer for row in both} >= {"overview", "credential claim analytics"}
    assert _export(pair, back) == _export(pair, source)


def _range(report: Any) -> tuple[int | None, int | None]:
    return report.checkpoint.first_ms, report.checkpoint.last_ms


def _clean_seed_store(client: redis.Redis) -> None:
    """Data as the older system writes it (its formats, no derived keys), without the two
    habits this library counts differently (re-enrolments, completions without enrolment)."""
    for course_id, modules in (("c-sales", 3), ("c-legal", 2)):
        seed_writer.create_course(
            client,
            {
                "id": course_id,
                "title": {"en": course_id},
                "description": {"en": "x"},
                "category": "sales",
                "modules": [
                    {"id": f"{course_id}-m{m}", "title": {"en": "m"}, "order": m, "lessons": []}
                    for m in range(1, modules + 1)
                ],
                "requiredForTiers": [],
                "isPublished": True,
                "order": 1,
                "duration": 60,
                "certificateEnabled": True,
                "passingScore": 70,
                "createdAt": "2025-01-01T00:00:00.000Z",
                "updatedAt": "2025-01-01T00:00:00.000Z",
            },
        )
        for n in range(12):
            user = f"u{n}"
            when = NOW - timedelta(days=30 - n)
            seed_writer.record_enrollment(client, user, course_id, when)
            for m in range(1, 1 + n % (modules + 1)):
                seed_writer.record_module(
                    client, user, course_id, f"{course_id}-m{m}", completed=False
                )
                seed_writer.record_module(
                    client, user, course_id, f"{course_id}-m{m}", completed=True
                )
            if n % 3 == 0:
                seed_writer.record_completion(client, user, course_id, when + timedelta(hours=5))


def test_an_older_system_store_before_and_after_reindex(
    pair: Pair,
    client: redis.Redis,
    redis_url: str,
    cluster: ClusterControl,
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    _clean_seed_store(client)
    source = pair.single(redis_url)
    on_cluster = pair.cluster(cluster)
    report = pair.migrate(source, on_cluster, migrate.migration("older system"))
    rows = _rows(report)
    assert report.checkpoint.rejected == 0
    # Before reindex the source cannot answer what needs derived keys: those are listed as
    # not compared; everything read from its base keys is equal.
    assert rows["course detailed analytics"].status == "not compared"
    assert "reindex" in rows["course detailed analytics"].note
    for name in ("module drop-off rates", "module funnel", "enrolment counts", "completion counts"):
        assert rows[name].status == "equal", rows[name]
    # The target was built by the write path: it answers them, and after a reindex of the
    # source every answer is the same.
    pair.call(source, "reindex")
    again = pair.migrate(source, on_cluster, migrate.compare(*_range(report)))
    assert {row.status for row in again} <= {"equal", "not compared"}
    assert _rows(again)["course detailed analytics"].status == "equal"


def test_the_older_systems_quirks_are_the_only_differences(
    pair: Pair,
    seed_store: redis.Redis,  # noqa: F811
    redis_url: str,
    cluster: ClusterControl,
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    source = pair.single(redis_url)
    pair.call(source, "reindex")
    on_cluster = pair.cluster(cluster)
    report = pair.migrate(source, on_cluster, migrate.migration("older system, reindexed"))
    differing = {row.answer: row for row in report.comparisons if row.status == "differs"}
    # A completion the older system recorded without enrolling ("drive-by", LEGAL) enrols
    # when it is replayed (docs/formats.md, "What round-trips"): LEGAL's enrolment figures.
    # In the global figures the same learner is one more enrolment in the overview, and the day
    # counts differ by the other habit: a re-enrolment the older system counted again.
    per_course = {"course detailed analytics", "enrolment counts"}
    assert set(differing) <= per_course | {"overview", "daily enrolments"}, differing
    for name in per_course & set(differing):
        assert LEGAL in differing[name].example
        assert differing[name].compared - differing[name].equal == 1
    if "overview" in differing:
        source_text, target_text = differing["overview"].example.split(" / target ")
        before, after = (json.loads(t[t.index("{") :]) for t in (source_text, target_text))
        assert {k for k in before if before[k] != after[k]} == {"totalEnrollments"}
        assert after["totalEnrollments"] - before["totalEnrollments"] == 1
    assert not report.equal


def test_refusals_are_typed_and_write_nothing(
    pair: Pair,
    client: redis.Redis,
    redis_url: str,
    cluster: ClusterControl,
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    source = pair.single(redis_url)
    _load(pair, source, MixedHistory(pairs=10, seed=1))
    # The same store (same server, database and prefix).
    with pytest.raises(ta.MigrationError, match="same store"):
        pair.migrate(source, pair.single(redis_url), migrate.migration("x", same_place=True))
    # A non-empty target without a checkpoint.
    on_cluster = pair.cluster(cluster)
    pair.call(on_cluster, "record_enrollment", "someone", "elsewhere")
    before = sorted(cluster_client.scan_iter(target_nodes=redis.cluster.RedisCluster.PRIMARIES))
    with pytest.raises(ta.MigrationError, match="holds training data"):
        pair.migrate(source, on_cluster, migrate.migration("x"))
    after = sorted(cluster_client.scan_iter(target_nodes=redis.cluster.RedisCluster.PRIMARIES))
    assert after == before
    # A target holding another source's migration.
    cluster_client.flushall()
    pair.migrate(source, on_cluster, migrate.migration("first", verify=False))
    with pytest.raises(ta.MigrationError, match="first"):
        pair.migrate(source, on_cluster, migrate.migration("second"))
    # A target whose layout differs (another certificate bucket count).
    cluster_client.flushall()
    pair.call(pair.cluster(cluster, cert_buckets=16), "record_enrollment", "u", "c")
    for key in list(cluster_client.scan_iter(target_nodes=redis.cluster.RedisCluster.PRIMARIES)):
        if not key.startswith("training:meta:"):
            cluster_client.delete(key)  # only the records of its zone and layout are left
    with pytest.raises(ta.LayoutMismatchError):
        pair.migrate(source, pair.cluster(cluster), migrate.migration("x", verify=False))
    assert cluster_client.get("training:meta:migrate:{:meta}") is None
    assert cluster_client.scard("training:agg:courses:{:meta}") == 0


# --- the command ---------------------------------------------------------------------------------

HISTORY = MixedHistory(pairs=600, seed=11)


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "training_analytics", "migrate", *args]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(*args), capture_output=True, text=True, env=_env(), timeout=600, check=False
    )


def _checkpoint(cluster_client: redis.cluster.RedisCluster) -> dict[str, Any] | None:
    value = cluster_client.get("training:meta:migrate:{:meta}")
    return None if value is None else dict(json.loads(str(value)))


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT])
def test_killed_midway_then_run_again_finishes_without_duplicates(
    stop: signal.Signals,
    client: redis.Redis,
    redis_url: str,
    cluster_url: str,
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    source = ta.TrainingAnalytics(client, clock=_clock)
    for course_id in HISTORY.course_ids():
        source.create_training_course(course(course_id, modules=HISTORY.modules))
    source.record_many(list(events(HISTORY)))
    args = ("--from", redis_url, "--to", cluster_url, "--page-size", "40", "--json")
    running = subprocess.Popen(
        _command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = _checkpoint(cluster_client)
        if found is not None and found["records"] >= 1500:
            break
        assert running.poll() is None, running.communicate()
        time.sleep(0.02)
    running.send_signal(stop)
    _, stderr = running.communicate(timeout=60)
    stopped = _checkpoint(cluster_client)
    assert stopped is not None and stopped["cursor"] is not None, "it finished before the stop"
    if stop == signal.SIGINT:
        assert running.returncode == 130
        assert "Run the same command again" in stderr
    else:
        assert running.returncode == -signal.SIGKILL

    done = _run(*args)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["resumed"] is True
    assert report["checkpoint"]["runs"] == 2
    assert report["checkpoint"]["cursor"] is None
    assert report["equal"] is True
    assert 0 < report["copiedNow"] < report["checkpoint"]["records"]
    # Nothing doubled: the cluster's export is the source's, record for record.
    on_cluster = ta.TrainingAnalytics(cluster_client, clock=_clock)
    assert _canonical(export_all(on_cluster, 500)) == _canonical(export_all(source, 500))
    for course_id in HISTORY.course_ids():
        assert on_cluster.get_course_detailed_analytics(
            course_id
        ) == source.get_course_detailed_analytics(course_id)
    # A third run copies nothing and verifies again.
    again = json.loads(_run(*args).stdout)
    assert again["copiedNow"] == 0
    assert again["equal"] is True


def test_the_command_prints_the_comparison(
    client: redis.Redis,
    redis_url: str,
    cluster_url: str,
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    source = ta.TrainingAnalytics(client, clock=_clock)
    for course_id in SMALL.course_ids():
        source.create_training_course(course(course_id, modules=SMALL.modules))
    source.record_many(list(events(SMALL)))
    done = _run("--from", redis_url, "--to", cluster_url)
    assert done.returncode == 0, done.stderr
    assert "Answers compared" in done.stdout
    assert "course detailed analytics" in done.stdout
    assert "equal" in done.stdout
    assert "records" in done.stdout


def test_bad_arguments_are_clear_errors_without_secrets(
    client: redis.Redis,
    redis_url: str,
    cluster_url: str,
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    ta.TrainingAnalytics(client, clock=_clock).record_enrollment("u1", "c1")
    secret = "s3cr3t-pa55"
    unreachable = f"redis://user:{secret}@127.0.0.1:1/0"
    for args, expected in (
        (("--from", "nonsense://x", "--to", cluster_url), "URL"),
        (("--from", unreachable, "--to", cluster_url), "127.0.0.1:1"),
        (("--from", redis_url, "--to", f"redis+cluster://user:{secret}@127.0.0.1:1"), "127.0.0.1"),
        (("--from", redis_url, "--to", redis_url), "same store"),
    ):
        done = _run(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert expected in done.stderr, done.stderr
        assert secret not in done.stdout + done.stderr
    # A non-empty target.
    ta.TrainingAnalytics(cluster_client).record_enrollment("u9", "c9")
    done = _run("--from", redis_url, "--to", cluster_url)
    assert done.returncode == 2
    assert "holds training data" in done.stderr
    assert _checkpoint(cluster_client) is None
