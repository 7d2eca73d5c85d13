"""The benchmark's mixed-history import phase (issue 13): it runs, and its answer check bites."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
import redis
from rich.console import Console

import training_analytics as ta
from training_analytics.bench.__main__ import parse_args
from training_analytics.bench.ingest_mixed import (
    READ_NOW,
    Answers,
    compare,
    create_courses,
    duckdb_answers,
    duckdb_load,
    ingest_mixed_phase,
    library_answers,
    record_parsed,
)
from training_analytics.bench.mixed import MixedHistory, write_jsonl
from training_analytics.bench.results import Run
from training_analytics.bench.workloads import QUICK, Bench, MismatchError

SMALL = MixedHistory(pairs=240)


def _loaded(client: redis.Redis, tmp_path: Path) -> tuple[ta.TrainingAnalytics, Answers]:
    """The small history in the store through record_many, and DuckDB's answers over its file."""
    path = tmp_path / "mixed.jsonl"
    write_jsonl(SMALL, path)
    lib = ta.TrainingAnalytics(client, clock=lambda: READ_NOW)
    create_courses(lib, SMALL)
    load = record_parsed(client, lib, path)
    assert load.rejected == 0
    con = duckdb.connect()
    duckdb_load(con, "events", path)
    return lib, duckdb_answers(con, "events", SMALL.course_ids(), SMALL.modules)


def test_library_answers_equal_duckdb_sql_over_the_file(
    client: redis.Redis, tmp_path: Path
) -> None:
    lib, reference = _loaded(client, tmp_path)
    ours = library_answers(lib, SMALL.course_ids())
    compare("small history", ours, reference, "DuckDB")
    # Not a vacuous equality: the history has every figure the comparison covers.
    assert sum(c.enrollments for _, c in ours.courses) == SMALL.pairs
    assert all(c.funnel and c.funnel[0][1] > 0 for _, c in ours.courses)
    assert ours.certificates.total > 0
    assert ours.certificates.claimed_ever > 0
    assert ours.certificates.expired > 0


@pytest.mark.parametrize("alteration", ["completion", "module_start", "claim"])
def test_an_altered_store_fails_the_check(
    client: redis.Redis, tmp_path: Path, alteration: str
) -> None:
    lib, reference = _loaded(client, tmp_path)
    if alteration == "completion":
        lib.record_completion("intruder", "course-00", at=READ_NOW)
    elif alteration == "module_start":
        lib.record_module_start("intruder", "course-03", "m8")
    else:
        issued = next(c for c in lib.get_all_training_certifications() if c.status == "issued")
        lib.update_certification_status(issued.id, "claimed", claimed_at=READ_NOW, at=READ_NOW)
    with pytest.raises(MismatchError):
        compare("altered store", library_answers(lib, SMALL.course_ids()), reference, "DuckDB")


def test_compare_names_the_figure_that_differs(client: redis.Redis, tmp_path: Path) -> None:
    lib, reference = _loaded(client, tmp_path)
    ours = library_answers(lib, SMALL.course_ids())
    course_id, first = ours.courses[0]
    step = first.funnel[2]
    funnel = (*first.funnel[:2], (step[0], step[1] + 1, step[2], step[3]), *first.funnel[3:])
    moved = replace(ours, courses=((course_id, replace(first, funnel=funnel)), *ours.courses[1:]))
    with pytest.raises(MismatchError, match=f"{course_id} module funnel"):
        compare("q", moved, reference, "DuckDB")
    score = replace(ours, courses=((course_id, replace(first, average_score=0)), *ours.courses[1:]))
    with pytest.raises(MismatchError, match=f"{course_id} average_score"):
        compare("q", score, reference, "DuckDB")
    certs = replace(
        ours, certificates=replace(ours.certificates, revoked=ours.certificates.revoked + 1)
    )
    with pytest.raises(MismatchError, match="certificates"):
        compare("q", certs, reference, "DuckDB")


@pytest.mark.single_server(
    reason="the benchmark's single-server phase (the library on one server's connection pool); "
    "the cluster's is `bench --only cluster` (issue 14 item 6)"
)
def test_the_phase_runs_end_to_end_and_records_its_figures(client: redis.Redis) -> None:
    # The quick plan's phase at a smaller size: the three paths, the replay, every kind, and
    # the encoding settings, each with its answers checked.
    plan = replace(QUICK, mixed_pairs=300, mixed_kind_pairs=300, mixed_repeat=1)
    run = Run()
    bench = Bench(client, plan, run, Console(file=io.StringIO()), None)
    settings_before = client.config_get("hash-max-listpack-value")
    ingest_mixed_phase(bench)
    figures = run.meta["ingest_mixed"]
    events = figures["history"]["events"]
    assert figures["record_many"]["applied"] == events
    assert figures["import"]["applied"] == events
    replay = figures["import replay"]
    assert replay["applied"] + replay["unchanged"] + replay["rejected"] == events
    assert set(figures["per_kind"]["kinds"]) == set(figures["history"]["events_by_kind"])
    assert figures["duckdb"]["read_json_events_per_second"] > 0
    assert figures["memory"]["bytes_per_learner_course"] > 0
    assert "training:progress:{user}:{course}" in figures["memory"]["families"]
    assert figures["settings"]["results"]["hash-max-listpack-value 1024"]
    # The settings it tried are put back, and the figures are JSON (the --json file).
    assert client.config_get("hash-max-listpack-value") == settings_before
    json.dumps(run.to_json())
    assert client.dbsize() == 0


def test_the_phase_is_selectable() -> None:
    assert parse_args(["--only", "ingest-mixed"]).only == "ingest-mixed"


def test_without_duckdb_the_phase_is_skipped_with_the_reason(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bench extra is optional: without DuckDB the suite runs its other phases.
    monkeypatch.setitem(sys.modules, "duckdb", None)
    monkeypatch.delitem(sys.modules, "training_analytics.bench.ingest_mixed", raising=False)
    run = Run()
    Bench(client, QUICK, run, Console(file=io.StringIO()), None).ingest_mixed_phase()
    skipped = run.meta["ingest_mixed"]["skipped"]
    assert "duckdb" in skipped
    assert "training-analytics[bench]" in skipped
