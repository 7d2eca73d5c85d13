"""Ctrl-C during a demo, in a real process (issue 9, item 1).

The demo runs as a subprocess against the test server under a prefix of its own; the test sends
SIGINT while events are being recorded (the demo's marker says so), then checks what the command
said, that the store is marked as an incomplete demo, that ``report`` warns, that ``demo`` refuses
to mix and offers --finish / --reset, and that --finish gives exactly the programme a demo that
was never interrupted gives.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import training_analytics as ta
from training_analytics.cluster.urls import is_cluster_url
from training_analytics.keys import Layout

from .stores import store_client

_SOURCE_ROOT = str(Path(ta.__file__).resolve().parents[1])
_TIMEOUT = 180
LEARNERS = "2000"
_DEMO = ("demo", "-n", LEARNERS, "--seed", "7")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SOURCE_ROOT, env.get("PYTHONPATH")]))
    return env


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training_analytics", *args],
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )


def _marker(url: str, prefix: str) -> str:
    """The demo marker's key in the store at ``url``: one server's layout or a cluster's."""
    layout: Layout = "cluster" if is_cluster_url(url) else "single"
    return ta.TrainingKeys(prefix, layout=layout).demo_marker()


@pytest.fixture
def store(redis_url: str) -> Iterator[tuple[str, redis.Redis]]:
    client = store_client(redis_url, decode_responses=True)
    client.flushdb()
    yield redis_url, client
    client.flushdb()
    client.close()


def _interrupt_while_recording(url: str, client: redis.Redis, prefix: str) -> tuple[int, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "training_analytics", "--url", url, "--prefix", prefix, *_DEMO],
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    marker = _marker(url, prefix)
    deadline = time.monotonic() + _TIMEOUT
    try:
        # Wait until some, not all, events are recorded: the marker counts them chunk by chunk.
        while int(client.hget(marker, "recorded") or 0) == 0:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


def test_ctrl_c_during_a_demo_marks_it_incomplete_and_finish_completes_it(
    store: tuple[str, redis.Redis],
) -> None:
    url, client = store
    code, stderr = _interrupt_while_recording(url, client, "int:")
    assert code == 130, stderr
    assert "Traceback" not in stderr
    flat = " ".join(stderr.split())
    assert "interrupted:" in flat
    assert "events are recorded" in flat and "are not" in flat
    assert "demo --finish" in flat and "demo --reset" in flat
    marker = client.hgetall(_marker(url, "int:"))
    assert marker["state"] == "loading"
    assert 0 < int(marker["recorded"]) < int(marker["events"])

    report = _cli("--url", url, "--prefix", "int:", "report", "--json")
    assert report.returncode == 0, report.stderr
    assert "interrupted demo" in report.stderr
    assert f"only {int(marker['recorded']):,} of its" in " ".join(report.stderr.split())

    again = _cli("--url", url, "--prefix", "int:", "demo", "-n", LEARNERS, "--seed", "7")
    assert again.returncode == 1
    assert "--finish" in again.stderr and "--reset" in again.stderr
    assert client.hget(_marker(url, "int:"), "recorded") == marker["recorded"]

    finished = _cli("--url", url, "--prefix", "int:", "demo", "--finish", "--json")
    assert finished.returncode == 0, finished.stderr
    assert client.hget(_marker(url, "int:"), "state") == "complete"
    whole = _cli(
        "--url", url, "--prefix", "whole:", "demo", "-n", LEARNERS, "--seed", "7", "--json"
    )
    assert whole.returncode == 0, whole.stderr
    resumed: dict[str, Any] = json.loads(finished.stdout)
    expected: dict[str, Any] = json.loads(whole.stdout)
    assert resumed == expected
    report = _cli("--url", url, "--prefix", "int:", "report")
    assert "interrupted demo" not in report.stderr


def test_reset_deletes_an_interrupted_demo(store: tuple[str, redis.Redis]) -> None:
    url, client = store
    code, _ = _interrupt_while_recording(url, client, "rst:")
    assert code == 130
    reset = _cli("--url", url, "--prefix", "rst:", "demo", "-n", "50", "--reset", "--json")
    assert reset.returncode == 0, reset.stderr
    marker = client.hgetall(_marker(url, "rst:"))
    assert marker["state"] == "complete"
    assert marker["learners"] == "50"
    assert marker["recorded"] == marker["events"]


_TTY_DEMO = ("--prefix", "tty:", "demo", "--json")


def _demo_on_a_terminal(url: str, answer: str) -> tuple[int, str]:
    """``demo`` with a terminal on stdin (where it asks), answering ``answer``."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "training_analytics", "--url", url, *_TTY_DEMO],
            env=_env(),
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(controller, answer.encode() + b"\n")
        _, stderr = process.communicate(timeout=_TIMEOUT)
    finally:
        os.close(controller)
        os.close(terminal)
    return process.returncode, stderr


@pytest.mark.parametrize(("answer", "code"), [("f", 0), ("r", 0), ("q", 1)])
def test_demo_on_a_terminal_offers_to_finish_or_reset(
    store: tuple[str, redis.Redis], answer: str, code: int
) -> None:
    url, client = store
    loaded = _cli("--url", url, "--prefix", "tty:", "demo", "-n", "60", "--seed", "3")
    assert loaded.returncode == 0, loaded.stderr
    # As Ctrl-C before the first chunk was recorded leaves it.
    client.hset(_marker(url, "tty:"), mapping={"state": "loading", "recorded": 0})
    returned, stderr = _demo_on_a_terminal(url, answer)
    assert returned == code, stderr
    assert "interrupted demo" in stderr and "Finish it (f)" in stderr
    marker = client.hgetall(_marker(url, "tty:"))
    if answer == "q":
        assert marker["state"] == "loading"
        return
    assert marker["state"] == "complete"
    # Finishing keeps the interrupted programme (60 learners, seed 3); a reset loads the default.
    assert marker["learners"] == ("60" if answer == "f" else "5000")
