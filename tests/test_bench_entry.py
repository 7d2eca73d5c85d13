"""The benchmark suite's entry points: where it lives and what runs by default (issue 9, 7)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from training_analytics.bench.__main__ import parse_args, plan_for
from training_analytics.bench.workloads import FULL, QUICK

_TIMEOUT = 120


def test_no_arguments_runs_the_quick_suite_and_full_is_explicit() -> None:
    assert plan_for(parse_args([])) is QUICK
    assert plan_for(parse_args(["--quick"])) is QUICK
    assert plan_for(parse_args(["--full"])) is FULL
    with pytest.raises(SystemExit):
        parse_args(["--quick", "--full"])


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "training_analytics", "bench", "--help"],
        ["-m", "training_analytics.bench", "--help"],
    ],
)
def test_bench_entry_points_work_from_any_directory(command: list[str], tmp_path: Path) -> None:
    # Not only from a checkout: the suite is part of the installed package.
    result = subprocess.run(
        [sys.executable, *command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--full" in result.stdout
    assert "the default" in result.stdout


def test_no_top_level_benchmarks_package_is_importable_from_elsewhere(tmp_path: Path) -> None:
    # A top-level `benchmarks` in site-packages collides with any other project's.
    result = subprocess.run(
        [sys.executable, "-c", "import benchmarks"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )
    assert result.returncode != 0
    assert "No module named 'benchmarks'" in result.stderr
