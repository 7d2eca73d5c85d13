"""Every Python example of the README runs as written, twice, in its own prefix (issue 9, item 2).

Each block is saved to a file and run with ``python`` in a fresh process, with REDIS_URL set to
the test server so that ``ta.connect()`` uses it (the README's own resolution rule).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis

import training_analytics as ta

_README = Path(__file__).resolve().parents[1] / "README.md"
_SOURCE_ROOT = str(Path(ta.__file__).resolve().parents[1])
_TIMEOUT = 60
BLOCKS = re.findall(r"^```python\n(.*?)^```", _README.read_text(encoding="utf-8"), re.S | re.M)


def _run(code: str, tmp_path: Path, redis_url: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = dict(os.environ)
    env["REDIS_URL"] = redis_url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SOURCE_ROOT, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )


def test_the_readme_has_its_examples() -> None:
    assert len(BLOCKS) >= 2
    assert any("AsyncTrainingAnalytics" in block for block in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs_twice_in_its_own_prefix(
    index: int, tmp_path: Path, client: redis.Redis, redis_url: str
) -> None:
    client.set("not-the-example's", "1")
    first = _run(BLOCKS[index], tmp_path, redis_url)
    assert first.returncode == 0, first.stderr
    second = _run(BLOCKS[index], tmp_path, redis_url)
    assert second.returncode == 0, second.stderr
    # Everything it wrote is under its own prefix, so a demo or real data sharing the store
    # is untouched.
    keys = {str(k) for k in client.scan_iter(count=1000)} - {"not-the-example's"}
    assert keys
    assert all(k.startswith("readme-") for k in keys), sorted(keys)
    # The second run changes nothing: the same figures, each first-time write now a replay.
    assert first.stdout.replace("True", "False") == second.stdout


def test_the_library_example_prints_sensible_figures(
    tmp_path: Path, client: redis.Redis, redis_url: str
) -> None:
    block = next(b for b in BLOCKS if "get_credential_claim_analytics" in b)
    ran = _run(block, tmp_path, redis_url)
    lines = ran.stdout.splitlines()
    assert lines[:4] == ["True", "False", "2 1 50.0", "92 32.0"], ran.stderr
    assert "100.0 16.0" in lines, ran.stderr  # claimed 16 hours after it was issued
    assert any(line.startswith("error: no course 'sales-102'") for line in lines)
    # The zone its day buckets are in is recorded for the CLI.
    zone = ta.TrainingAnalytics(client, prefix="readme-example:").keys.time_zone_marker()
    assert client.get(zone) == "Europe/Madrid"
