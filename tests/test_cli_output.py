"""What the CLI prints, for the reader it goes to (issue 9, items 3, 4 and 6).

Against the test server, under prefixes of their own: subprocesses where the output's destination
matters (a pipe, a closed pipe), the in-process runner elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

import training_analytics as ta
from training_analytics.cli import COURSE_NOTES, app
from training_analytics.demo import DEFAULT_NOW

from .stores import store_client

_SOURCE_ROOT = str(Path(ta.__file__).resolve().parents[1])
_TIMEOUT = 120

runner = CliRunner()
_OUT_REPORT = ("--prefix", "out:", "report")


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.pop("COLUMNS", None)  # a pipe has no width: the CLI must not assume 80 columns
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SOURCE_ROOT, env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def demo_store(redis_url: str) -> Iterator[str]:
    """A small demo under the prefix 'out:', loaded once for this module."""
    client = store_client(redis_url, decode_responses=True)
    client.flushdb()
    loaded = runner.invoke(app, ["--url", redis_url, "--prefix", "out:", "demo", "-n", "300"])
    assert loaded.exit_code == 0, loaded.output
    yield redis_url
    client.flushdb()
    client.close()


def _report(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training_analytics", "--url", url, *_OUT_REPORT, *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )


def test_a_closed_pipe_ends_the_report_quietly(demo_store: str) -> None:
    # `report | head -1`, deterministically: the reader is gone before the first write.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "training_analytics", "--url", demo_store, *_OUT_REPORT],
            env=_env(),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 141
    assert result.stderr == ""


def test_piped_report_is_not_wrapped(demo_store: str) -> None:
    result = _report(demo_store)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # Each note is one line, not cut at 80 columns mid-sentence.
    assert COURSE_NOTES in lines
    # One row per course: its title and its id on the same line, no line holding only an id.
    row = next(line for line in lines if "Partner Sales Fundamentals" in line)
    assert "sales-fundamentals" in row
    assert not any(re.fullmatch(r"[│|\s]*sales-fundamentals[│|\s]*", line) for line in lines)


def test_every_column_has_a_header_and_figures_have_one_unit(demo_store: str) -> None:
    table = _report(demo_store)
    as_json: dict[str, Any] = json.loads(_report(demo_store, "--json").stdout)
    lines = table.stdout.splitlines()
    header = next(line for line in lines if "Drop-off %" in line and "┃" in line)
    cells = [c.strip() for c in header.strip("┃").split("┃")]
    assert all(cells), header  # the bar column included
    assert "0%" in cells[-1] and "100%" in cells[-1]
    assert "Hours" in next(line for line in lines if "Enrolled" in line)
    for course in as_json["courses"]:
        a = course["analytics"]
        row = next(line for line in lines if f" {course['id']} " in line)
        cells = [c.strip() for c in row.strip("│").split("│")]
        # The same figures and units as --json, drafts included (0, not a dash).
        assert cells[2:] == [
            f"{a['enrollments']:,}",
            f"{a['completions']:,}",
            f"{a['completionRate']:.1f}",
            str(a["averageScore"]),
            f"{a['averageTimeToComplete']:,.1f}",
        ]
    claims = as_json["credentialClaimAnalytics"]
    hours = next(line for line in lines if "Average time to claim, hours" in line)
    assert hours.split("│")[2].strip() == f"{claims['averageClaimTimeHours']:,.1f}"


@pytest.mark.parametrize("command", [[], ["demo"], ["report"], ["reindex"], ["bench"]])
def test_help_does_not_show_flags_as_bool(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    assert "--help" in result.output or command == ["bench"]


def test_report_help_says_what_course_leaves_out() -> None:
    result = runner.invoke(app, ["report", "--help"], env={"COLUMNS": "200"})
    assert "overview and the certificates" in " ".join(result.output.split())


# --- global options before or after the command ----------------------------------------------


@pytest.fixture
def external(redis_url: str) -> Iterator[tuple[str, redis.Redis]]:
    client = store_client(redis_url, decode_responses=True)
    client.flushdb()
    yield redis_url, client
    client.flushdb()
    client.close()


@pytest.mark.parametrize("before", [True, False])
def test_url_and_prefix_work_before_and_after_the_command(
    external: tuple[str, redis.Redis], before: bool
) -> None:
    url, client = external
    analytics = ta.TrainingAnalytics(client, prefix="g:")
    analytics.create_training_course({"id": "c1", "title": {"en": "C1"}, "category": "sales"})
    analytics.record_enrollment("ana", "c1")
    options = ["--url", url, "--prefix", "g:"]
    args = [*options, "report", "--json"] if before else ["report", "--json", *options]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["overview"]["totalEnrollments"] == 1


def test_the_command_s_option_wins_over_the_global_one(external: tuple[str, redis.Redis]) -> None:
    url, client = external
    ta.TrainingAnalytics(client, prefix="b:").record_enrollment("ana", "c1")
    result = runner.invoke(app, ["--prefix", "a:", "--url", url, "report", "--prefix", "b:"])
    assert result.exit_code == 0, result.output
    assert "prefix 'b:'" in result.output


def test_tz_follows_the_zone_the_data_was_written_in(external: tuple[str, redis.Redis]) -> None:
    url, _ = external
    loaded = runner.invoke(app, ["--url", url, "--tz", "Europe/Madrid", "demo", "-n", "30"])
    assert loaded.exit_code == 0, loaded.output
    # Without --tz the report reads the buckets in their own zone and says which.
    plain = runner.invoke(app, ["--url", url, "report"])
    assert plain.exit_code == 0, plain.output
    assert "days in Europe/Madrid" in plain.output
    # Another zone would only relabel Madrid days: refused, with what to do instead.
    other = runner.invoke(app, ["--url", url, "report", "--tz", "UTC"])
    assert other.exit_code == 2
    message = " ".join(other.output.split())
    assert "written in Europe/Madrid" in message and "cannot be converted" in message
    same = runner.invoke(app, ["--url", url, "--tz", "Europe/Madrid", "report"])
    assert same.exit_code == 0, same.output
    reindexed = runner.invoke(app, ["--url", url, "reindex", "--tz", "Asia/Tokyo"])
    assert reindexed.exit_code == 2


# --- the demo's programme does not depend on the day it runs ---------------------------------


def test_the_same_seed_gives_the_same_programme(external: tuple[str, redis.Redis]) -> None:
    url, _ = external
    runs = []
    for prefix in ("one:", "two:"):
        result = runner.invoke(app, ["--url", url, "--prefix", prefix, "demo", "-n", "80"])
        assert result.exit_code == 0, result.output
        shown = runner.invoke(app, ["--url", url, "--prefix", prefix, "report", "--json"])
        runs.append(json.loads(shown.stdout))
    assert runs[0] == runs[1]
    # Anchored to a fixed moment, not to the day the test runs.
    assert runs[0]["asOf"] == DEFAULT_NOW.isoformat()
    assert runs[0]["series"]["endDate"] == DEFAULT_NOW.date().isoformat()
    assert sum(p["count"] for p in runs[0]["series"]["enrollments"]) > 0
