"""The benchmark's cluster phase (issue 14 item 6): its plumbing, and its answer check bites.

The phase runs on the session's single server and the session's cluster (three primaries and
three replicas) at a tiny size; speed is not asserted, only that the figures add up and that a
cluster answering differently stops the run.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster
from rich.console import Console

import training_analytics as ta
from training_analytics.bench.__main__ import parse_args
from training_analytics.bench.cluster import (
    READ_NOW,
    ClusterBench,
    cluster_phase,
    compare_answers,
    event_tag,
    global_read,
    load_per_primary,
    max_over_mean,
    percentile,
    project,
    spread_events,
    tag_slot,
)
from training_analytics.bench.mixed import MixedHistory, events
from training_analytics.bench.report import print_run
from training_analytics.bench.results import Run
from training_analytics.bench.workloads import PHASES, QUICK, Bench, MismatchError
from training_analytics.cluster.local import ClusterControl, even_slot_ranges
from training_analytics.keys import TrainingKeys

TINY = replace(
    QUICK,
    cluster_pairs=60,
    cluster_course_sizes=(20, 60),
    cluster_latency_calls=5,
    cluster_spread_courses=30,
    cluster_spread_certificates=120,
    cluster_hot_pairs=30,
)


def _bench(client: redis.Redis) -> Bench:
    return Bench(client, TINY, Run(), Console(file=io.StringIO()), None)


# --- pure parts ----------------------------------------------------------------------------------


def test_percentile_is_the_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert percentile(samples, 0.5) == 50
    assert percentile(samples, 0.99) == 99
    assert percentile([3.0], 0.99) == 3
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 0.5)


def test_max_over_mean() -> None:
    assert max_over_mean([1, 1, 1]) == 1
    assert max_over_mean([3, 0, 0]) == 3
    assert max_over_mean([0, 0]) == 0


def test_load_per_primary_puts_each_tag_on_the_primary_serving_its_slot() -> None:
    weights = {f"c{i}": float(i) for i in range(50)}
    loads = load_per_primary(weights, 3)
    assert sum(loads) == sum(weights.values())
    ranges = even_slot_ranges(3)
    first = [t for t in weights if ranges[0][0] <= tag_slot(t) <= ranges[0][1]]
    assert loads[0] == sum(weights[t] for t in first)
    assert load_per_primary(weights, 1) == [sum(weights.values())]


def test_projection_scales_with_primaries_over_the_imbalance() -> None:
    rows = project(10.0, 20.0, {3: 1.0, 10: 2.0})
    assert rows[0] == {
        "primaries": 3,
        "imbalance_max_over_mean": 1.0,
        "events_per_second": 300_000,
        "client_processes_needed": 6,
    }
    assert rows[1]["events_per_second"] == 500_000
    assert rows[1]["client_processes_needed"] == 10


def test_event_tag_is_the_course_or_the_certificate_bucket() -> None:
    keys = TrainingKeys(layout="cluster")
    history = events(MixedHistory(pairs=40))
    for event in history:
        tag = event_tag(event, keys)
        if event["kind"].startswith("certification"):
            assert tag in keys.certification_buckets()
        else:
            course = event["progress"]["courseId"] if event["kind"] == "progress" else None
            assert tag == (course or event["courseId"])
    issued = next(e for e in history if e["kind"] == "certification_issued")
    assert event_tag(issued, keys) == keys.certification_bucket(issued["certification"]["id"])


def test_spread_events_enrol_each_course_and_issue_the_certificates() -> None:
    items = spread_events(courses=5, learners=3, certificates=7)
    kinds = [e["kind"] for e in items]
    assert kinds.count("enrollment") == 15
    assert kinds.count("certification_issued") == 7
    assert {e["courseId"] for e in items if e["kind"] == "enrollment"} == {
        f"spread-{c:04d}" for c in range(5)
    }
    assert len({e["certification"]["id"] for e in items if "certification" in e}) == 7


def test_compare_answers_names_the_answer_that_differs() -> None:
    compare_answers("q", {"a": 1, "b": 2}, {"a": 1, "b": 2})
    with pytest.raises(MismatchError, match="q: b: single server answered 2, cluster answered 3"):
        compare_answers("q", {"a": 1, "b": 2}, {"a": 1, "b": 3})
    with pytest.raises(MismatchError, match="other questions"):
        compare_answers("q", {"a": 1}, {"b": 1})


def test_a_global_read_is_compared_before_it_is_timed() -> None:
    assert global_read("overview", lambda: 1, lambda: 1, 3) == {"status": "answers equal"}
    with pytest.raises(MismatchError, match="overview: answer"):
        global_read("overview", lambda: 1, lambda: 2, 3)


def test_the_phase_is_selectable_and_part_of_the_suite() -> None:
    assert parse_args(["--only", "cluster"]).only == "cluster"
    assert "cluster" in PHASES


# --- on the session's server and cluster ---------------------------------------------------------


def test_the_phase_runs_end_to_end_and_its_figures_add_up(
    client: redis.Redis, cluster: ClusterControl, tmp_path: Path
) -> None:
    bench = _bench(client)
    cluster_phase(bench, cluster)
    figures: dict[str, Any] = bench.run.meta["cluster"]
    ingest = figures["ingest"]
    history = ingest["history"]
    assert ingest["single"]["applied"] == ingest["cluster"]["applied"] == history["events"]
    assert ingest["answers_checked"] >= history["courses"] * 5
    nodes = ingest["cluster"]["servers"]
    assert len(nodes) == figures["cluster"]["primaries"] == 3
    assert sum(n["events"] for n in nodes.values()) == history["events"]
    assert set(figures["course_latency"]["sizes"]) == {"20", "60"}
    catalog = cluster.owner(tag_slot(":catalog")).address
    for size in figures["course_latency"]["sizes"].values():
        assert size["single"]["calls"] == size["cluster"]["calls"] == 5
        # The common case: the course's primary is not the catalog's.
        assert cluster.owner(tag_slot(size["course"])).address != catalog
    hot = figures["hot_course"]
    assert hot["course_events"] <= hot["events"]
    assert hot["primary"] in nodes
    spread = figures["spread"]
    primaries = spread["primaries"].values()
    assert sum(p["courses"] for p in primaries) == 30
    assert sum(p["certificates"] for p in primaries) == 120
    assert sum(p["certificate_buckets"] for p in primaries) == spread["certificate_buckets"]
    assert all(p["keys"] > 0 for p in primaries)
    for reads in figures["global_reads"].values():
        assert set(reads) >= {"overview", "enrolment series, 365 days"}
        for result in reads.values():
            assert result["status"] == "measured"
    rows = figures["projection"]["thousand_courses"]
    assert [r["primaries"] for r in rows] == [3, 10, 100]
    assert all(r["events_per_second"] > 0 for r in rows)
    assert set(figures["targets"].values()) <= {True, False}
    # The --json file, and its tables shown again by --from-json.
    saved = tmp_path / "cluster.json"
    bench.run.save(saved)
    out = io.StringIO()
    print_run(Run.load(saved), Console(file=out, width=200))
    shown = out.getvalue()
    assert "Spread over the primaries: 30 courses, 120 certificates" in shown
    assert "course analytics, 60 learners" in shown
    assert "Projection from" in shown
    # Both stores are left empty.
    assert client.dbsize() == 0
    assert all(cluster.client(p.address).dbsize() == 0 for p in cluster.primaries())


@pytest.mark.parametrize("alteration", ["completion", "module_start", "claim"])
def test_a_cluster_answering_differently_fails_the_check(
    client: redis.Redis,
    cluster: ClusterControl,
    cluster_client: redis.cluster.RedisCluster,
    alteration: str,
) -> None:
    phase = ClusterBench(_bench(client), cluster, cluster_client)
    history = MixedHistory(pairs=60)
    items = events(history)
    single, clustered = phase.fresh()
    phase.create_catalog((single, clustered), history.course_ids())
    single.record_many(items, stream=True)
    clustered.record_many(items, stream=True)
    courses = history.course_ids()
    certs = [e["certification"]["id"] for e in items if e["kind"] == "certification_issued"]

    def answers(lib: ta.TrainingAnalytics) -> dict[str, Any]:
        return phase.course_answers(lib, courses) | phase.certificate_answers(lib, certs)

    # The same history: the same answers, and not vacuously (it has data in every course).
    compare_answers("same history", answers(single), answers(clustered))
    assert sum(single.get_course_enrollment_count(c) for c in courses) > 0
    if alteration == "completion":
        clustered.record_completion("intruder", "course-03", at=READ_NOW)
        expected = "course-03 analytics"
    elif alteration == "module_start":
        clustered.record_module_start("intruder", "course-05", "m8")
        expected = "course-05 analytics"  # its drop-off
    else:
        found = [clustered.get_training_certification(c) for c in certs]
        issued = next(c.id for c in found if c is not None and c.status == "issued")
        clustered.update_certification_status(issued, "revoked", at=READ_NOW)
        expected = f"certificate {issued}"
    with pytest.raises(MismatchError, match=expected):
        compare_answers("altered cluster", answers(single), answers(clustered))
    phase.fresh()
