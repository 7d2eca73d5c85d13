"""The embedded server's append-only file stays compact (issue 9, item 5).

Real Valkey processes in short data directories of their own under /tmp, as in test_server.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import training_analytics.server as server_module
from training_analytics.server import compact_append_only_file, connect, stop_embedded_server

from .stores import ONE_SERVER

pytestmark = ONE_SERVER

_SOURCE_ROOT = str(Path(server_module.__file__).resolve().parents[1])
_TIMEOUT = 120


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ta-aof-", dir="/tmp"))
    monkeypatch.setenv("TRAINING_ANALYTICS_DATA_DIR", str(path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    yield path
    stop_embedded_server(path, force=True)
    shutil.rmtree(path, ignore_errors=True)


def _aof_bytes(data_dir: Path) -> int:
    return sum(f.stat().st_size for f in (data_dir / "valkey" / "appendonlydir").iterdir())


def _demo(data_dir: Path) -> None:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env["TRAINING_ANALYTICS_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SOURCE_ROOT, env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "training_analytics", "demo", "-n", "400", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_server_rewrites_its_aof_automatically(data_dir: Path) -> None:
    client = connect()
    config = {str(k): str(v) for k, v in client.config_get("auto-aof-rewrite-*").items()}
    assert int(config["auto-aof-rewrite-percentage"]) == 100
    assert int(config["auto-aof-rewrite-min-size"]) == 16 * 1024 * 1024
    client.close()


def test_a_replaced_demo_leaves_no_history_in_the_aof(data_dir: Path) -> None:
    _demo(data_dir)
    first = _aof_bytes(data_dir)
    # The second demo deletes the first one's keys, then compacts: the file holds one demo's
    # data, not two demos' commands plus the deletions.
    _demo(data_dir)
    second = _aof_bytes(data_dir)
    assert second < 1.3 * first, (first, second)


def test_compact_rewrites_now_and_waits(data_dir: Path) -> None:
    client = connect()
    assert isinstance(client, redis.Redis)
    for i in range(2000):
        client.set(f"k{i}", "x" * 100)
    client.delete(*(f"k{i}" for i in range(2000)))
    before: dict[str, Any] = client.info("persistence")
    compact_append_only_file(client)
    after: dict[str, Any] = client.info("persistence")
    assert after["aof_rewrite_in_progress"] == 0
    assert after["aof_last_bgrewrite_status"] == "ok"
    assert after["aof_current_size"] < before["aof_current_size"]
    client.close()


def test_compact_does_nothing_without_aof(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    if client.info("persistence")["aof_enabled"]:
        pytest.skip("the test server has AOF on; the point is a server without it")
    rewrites = client.info("persistence").get("aof_rewrites")
    compact_append_only_file(client)  # no BGREWRITEAOF: it would start persisting to an AOF
    assert client.info("persistence").get("aof_rewrites") == rewrites
    assert client.info("persistence")["aof_rewrite_in_progress"] == 0
    client.close()
