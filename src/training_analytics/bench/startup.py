"""How long a command waits for the embedded server on a large store (issue 9, item 5).

Each command of the CLI (and each process using ``connect()`` without ``REDIS_URL``) starts the
embedded Valkey server unless another process has it running, and the server replays its
append-only file before it answers. This phase loads ``plan.startup_learners`` learners into an
embedded server of its own (a throwaway data directory, whatever ``REDIS_URL`` says), with the
automatic rewrite switched off during the load so that the file holds every command as written
(what a store grown by repeated demos or imports looked like before the rewrite settings), then
times:

* the first start on that file (``start_as_written``): the server's own configuration rewrites
  the file after this start, and the process that stops the server waits for that rewrite;
* later starts on the compacted file (``start_compacted``);
* a whole command as a user runs it (``command_compacted``: ``training-analytics report --json``
  on an empty prefix, Python's start, the server's start, the report, and the server's stop).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import redis

from training_analytics.server import (
    DATA_DIR_ENV,
    REDIS_URL_ENV,
    EmbeddedServer,
    ensure_embedded_server,
    stop_embedded_server,
)

from . import data
from .timing import Timing

if TYPE_CHECKING:
    from .workloads import Bench


#: A report on a prefix with no data: the command's own work is negligible next to the start.
_EMPTY_REPORT = ("--prefix", "bench-empty:", "report", "--json")


def aof_bytes(directory: Path) -> int:
    aof = EmbeddedServer.at(directory).directory / "appendonlydir"
    return sum(f.stat().st_size for f in aof.iterdir()) if aof.exists() else 0


def time_start(directory: Path) -> float:
    """Start the (stopped) embedded server of ``directory``; seconds until it answers PING."""
    started = time.perf_counter()
    server = ensure_embedded_server(directory)
    client = redis.Redis.from_url(server.url)
    client.ping()
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed


def time_command(directory: Path) -> float:
    """Seconds of ``training-analytics report --json`` on an empty prefix, server stopped."""
    env = dict(os.environ)
    env.pop(REDIS_URL_ENV, None)
    env[DATA_DIR_ENV] = str(directory)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "training_analytics", *_EMPTY_REPORT],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=600,
    )
    return time.perf_counter() - started


def startup_phase(bench: Bench) -> None:
    n = bench.plan.startup_learners
    repeat = bench.plan.slow_repeat
    # Short: a unix socket path must fit in about 100 bytes.
    directory = Path(tempfile.mkdtemp(prefix="ta-bench-", dir="/tmp"))
    try:
        server = ensure_embedded_server(directory)
        client = redis.Redis.from_url(server.url, decode_responses=True)
        client.config_set("auto-aof-rewrite-percentage", 0)
        bench.log(f"startup: loading {n:,} learners into an embedded server in {directory}")
        data.load_seed_layout(client, data.learners("startup", n))
        client.close()
        stop_embedded_server(directory, force=True)
        written = aof_bytes(directory)
        first = time_start(directory)
        # Stopping waits for the rewrite the server started on its own (the file had grown).
        stop_embedded_server(directory, force=True)
        compacted = aof_bytes(directory)
        later = []
        for _ in range(repeat):
            later.append(time_start(directory))
            stop_embedded_server(directory, force=True)
        commands = [time_command(directory) for _ in range(repeat)]
    finally:
        stop_embedded_server(directory, force=True)
        shutil.rmtree(directory, ignore_errors=True)
    mb = 1024 * 1024
    bench.record(
        "start_as_written",
        n,
        "library",
        "latency",
        Timing((first,), 1),
        note=f"AOF {written / mb:,.0f} MB, never rewritten",
    )
    bench.record(
        "start_compacted",
        n,
        "library",
        "latency",
        Timing(tuple(later), 1),
        note=f"AOF {compacted / mb:,.0f} MB after the automatic rewrite",
    )
    bench.record(
        "command_compacted",
        n,
        "library",
        "latency",
        Timing(tuple(commands), 1),
        note="training-analytics report --json, empty prefix: Python, server start and stop",
    )
    bench.run.meta["startup_aof_bytes"] = {"as_written": written, "compacted": compacted}
