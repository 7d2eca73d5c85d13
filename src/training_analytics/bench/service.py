"""The HTTP service under load (``bench --only service``).

A real ``training-analytics serve`` (one uvicorn worker, access log off) on a loopback port
over the suite's server, and a load generator in other processes: ``wrk`` for the GETs
(Debian's ``wrk`` package; 50 connections, bounded in time) and, for ``POST /events``, a
Python client sending prepared bodies of 1,000 events (a few connections, bounded in count).
The same enrolments are then written in-process by ``record_many``, in the same run, to say
what HTTP costs. Results go to ``run.meta["service"]`` and a table.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import redis
from rich.table import Table

import training_analytics as ta

from . import data
from .data import NOW
from .workloads import data_moment, mixed_events

if TYPE_CHECKING:
    from .workloads import Bench

CONNECTIONS = 50
BATCH = 1000
COURSES = 8


@dataclass
class Load:
    """What ``wrk`` saw for one GET, and the CPU the service and the store spent on it."""

    path: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    service_cpu_us_per_request: float = float("nan")
    store_cpu_us_per_request: float = float("nan")


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux ``/proc``): unlike req/s, it does not depend on
    what else runs on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _store_cpu_seconds(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def measured(load: Callable[[], Load], service_pid: int, client: redis.Redis) -> Load:
    """``load()`` with the CPU time the service process and the store spent meanwhile."""
    service_before, store_before = _process_cpu_seconds(service_pid), _store_cpu_seconds(client)
    result = load()
    service = _process_cpu_seconds(service_pid) - service_before
    store = _store_cpu_seconds(client) - store_before
    result.service_cpu_us_per_request = service / result.requests * 1e6
    result.store_cpu_us_per_request = store / result.requests * 1e6
    return result


def _median_load(runs: Sequence[Load]) -> Load:
    """Each figure's median over the rounds (requests and errors: their sums)."""

    def median(field: str) -> float:
        return float(statistics.median(getattr(run, field) for run in runs))

    return Load(
        runs[0].path,
        median("requests_per_second"),
        median("p50_ms"),
        median("p99_ms"),
        sum(run.requests for run in runs),
        sum(run.errors for run in runs),
        median("service_cpu_us_per_request"),
        median("store_cpu_us_per_request"),
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _url_of(client: redis.Redis) -> str:
    """A URL for the bench's server: REDIS_URL when set, else the client's own address."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    host, port = kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379)
    return f"redis://{host}:{port}/{kwargs.get('db', 0)}"


class Service:
    """``training-analytics serve`` in a child process."""

    def __init__(self, redis_url: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        handle, name = tempfile.mkstemp(prefix="bench-serve-", suffix=".log")
        self.log = Path(name)
        command = [
            sys.executable, "-m", "training_analytics", "serve", "--port", str(self.port),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            env={**os.environ, "REDIS_URL": redis_url},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        os.close(handle)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"serve did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        self.log.unlink(missing_ok=True)


_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(base: str, path: str, key: str | None, seconds: int) -> Load:
    """``wrk`` with 2 threads and 50 connections for ``seconds``; p50/p99 from --latency."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if key:
        command += ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run(
        [*command, base + path], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    latency = {int(m[1]): float(m[2]) * _UNITS[m[3]] for m in _LATENCY.finditer(out)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    total = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(bad[1]) if bad else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Load(
        path, rps, latency.get(50, float("nan")), latency.get(99, float("nan")), total, errors
    )


def _python_get_load(base: str, path: str, key: str | None, seconds: int) -> Load:
    """Fallback without ``wrk``: 50 threads of blocking httpx clients (slower than wrk: the
    client may then be what bounds the figure)."""
    latencies: list[float] = []
    errors = [0]
    stop = time.monotonic() + seconds
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    def worker() -> None:
        mine: list[float] = []
        with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
            while time.monotonic() < stop:
                started = time.perf_counter()
                reply = http.get(path)
                mine.append(time.perf_counter() - started)
                if reply.status_code != 200:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Load(
        path,
        len(latencies) / elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[int(len(latencies) * 0.99)] * 1000,
        len(latencies),
        errors[0],
    )


_TOTALS = re.compile(rb'"rejected":(\d+)\}$')


def post_batches(base: str, key: str, bodies: Sequence[bytes], connections: int = 4) -> float:
    """Send prepared ``POST /events`` bodies over ``connections`` connections; events/s."""
    queue = list(reversed(bodies))
    lock = threading.Lock()
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def worker() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                reply = http.post("/api/v1/events", content=body)
                # The totals close the reply: read them without parsing a thousand results
                # (this client shares the machine's cores with the server).
                totals = _TOTALS.search(reply.content[-200:])
                if reply.status_code != 200 or totals is None or int(totals[1]):
                    failures.append(reply.text[:200])

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"POST /events failed: {failures[0]}")
    return BATCH * len(bodies) / elapsed


def _bodies(events: Sequence[Any]) -> list[bytes]:
    dumped = [e.model_dump(mode="json", by_alias=True, exclude_none=True) for e in events]
    return [json.dumps(dumped[i : i + BATCH]).encode() for i in range(0, len(dumped), BATCH)]


def _enrolments(tag: str, count: int) -> list[ta.EnrollmentEvent]:
    return [
        ta.EnrollmentEvent(
            user_id=f"{tag}-u{i}",
            course_id=f"svc-{i % COURSES}",
            at=data_moment(data.NOW_MS - i * 61_000),
        )
        for i in range(count)
    ]


def service_phase(bench: Bench) -> None:
    """Measure the service; figures in ``bench.run.meta["service"]``."""
    quick = bench.plan.mode == "quick"
    # The GETs are measured in interleaved rounds (healthz, overview, course analytics, then
    # again): on a shared machine the load moves within a run, and a ratio is only meaningful
    # between figures taken side by side. Medians over the rounds.
    rounds, seconds = (3, 2) if quick else (3, 5)
    events_per_mode = 20 * BATCH if quick else 100 * BATCH
    bench.flush()
    lib = ta.TrainingAnalytics(bench.client, clock=lambda: NOW)
    for n in range(COURSES):
        lib.create_training_course(data.course_definition(f"svc-{n}", order=n))
    # Learners in every course, so analytics read real counters.
    seed_rows = [r for n in range(COURSES) for r in data.learners(f"svc-{n}", 500, seed=n)]
    lib.record_many(mixed_events(seed_rows))
    key = lib.create_api_key("bench", "admin").key
    figures: dict[str, Any] = {
        "workers": 1,
        "connections": CONNECTIONS,
        "load_generator": "wrk" if shutil.which("wrk") else "python httpx threads (no wrk)",
        "duration_seconds_per_get": seconds,
        "rounds": rounds,
    }
    get_load = wrk if shutil.which("wrk") else _python_get_load
    service = Service(_url_of(bench.client))
    try:
        pid = service.process.pid
        paths = {
            "healthz": ("/healthz", None),
            "overview": ("/api/v1/overview", key),
            "course_analytics": ("/api/v1/courses/svc-3/analytics", key),
        }
        for path, auth in paths.values():  # warm-up: connections, first-use code paths
            get_load(service.base, path, auth, 1)
        measured_rounds: dict[str, list[Load]] = {name: [] for name in paths}
        for _ in range(rounds):
            for name, (path, auth) in paths.items():
                load = measured(
                    partial(get_load, service.base, path, auth, seconds), pid, bench.client
                )
                measured_rounds[name].append(load)
        loads = {name: _median_load(runs) for name, runs in measured_rounds.items()}
        bench.log("service: GETs measured; now POST /events")
        enrol = _enrolments("http", events_per_mode)
        bodies = _bodies(enrol)
        service_before = _process_cpu_seconds(pid)
        store_before = _store_cpu_seconds(bench.client)
        http_enrol = post_batches(service.base, key, bodies)
        figures["post_events_service_cpu_us_per_event"] = round(
            (_process_cpu_seconds(pid) - service_before) / events_per_mode * 1e6, 1
        )
        figures["post_events_store_cpu_us_per_event"] = round(
            (_store_cpu_seconds(bench.client) - store_before) / events_per_mode * 1e6, 1
        )
        mixed_rows = [
            r
            for n in range(COURSES)
            for r in data.learners(f"svc-{n}", events_per_mode // 40, seed=100 + n, user_prefix="m")
        ]
        mixed = mixed_events(mixed_rows)[:events_per_mode]
        http_mixed = post_batches(service.base, key, _bodies(mixed))
    finally:
        service.stop()
    # The same kind of events in-process, same run, fresh learners (no replays).
    local = _enrolments("local", events_per_mode)
    started, cpu = time.perf_counter(), time.process_time()
    lib.record_many(local, batch_size=BATCH)
    in_process = events_per_mode / (time.perf_counter() - started)
    figures["record_many_cpu_us_per_event"] = round(
        (time.process_time() - cpu) / events_per_mode * 1e6, 1
    )
    # record_each: what POST /events calls, in-process (one outcome object per event).
    each = _enrolments("each", events_per_mode)
    started, cpu = time.perf_counter(), time.process_time()
    lib.record_each(each, batch_size=BATCH)
    in_process_each = events_per_mode / (time.perf_counter() - started)
    figures["record_each_cpu_us_per_event"] = round(
        (time.process_time() - cpu) / events_per_mode * 1e6, 1
    )
    local_mixed_rows = [
        r
        for n in range(COURSES)
        for r in data.learners(f"svc-{n}", events_per_mode // 40, seed=200 + n, user_prefix="l")
    ]
    local_mixed = mixed_events(local_mixed_rows)[:events_per_mode]
    started = time.perf_counter()
    lib.record_many(local_mixed, batch_size=BATCH)
    in_process_mixed = len(local_mixed) / (time.perf_counter() - started)

    figures["gets"] = {name: load.__dict__ for name, load in loads.items()}
    figures["get_rounds"] = {
        name: [load.__dict__ for load in runs] for name, runs in measured_rounds.items()
    }
    # Each round's analytics rate against the healthz rate of the same round.
    ratios = {
        name: statistics.median(
            load.requests_per_second / health.requests_per_second
            for load, health in zip(measured_rounds[name], measured_rounds["healthz"], strict=True)
        )
        for name in ("overview", "course_analytics")
    }
    figures["ratio_to_healthz"] = {name: round(ratio, 3) for name, ratio in ratios.items()}
    figures["ingest"] = {
        "http_enrolments_per_second": round(http_enrol),
        "record_many_enrolments_per_second": round(in_process),
        "record_each_enrolments_per_second": round(in_process_each),
        "http_mixed_per_second": round(http_mixed),
        "record_many_mixed_per_second": round(in_process_mixed),
        "events_per_mode": events_per_mode,
    }
    figures["targets"] = {
        "overview >= 50% of healthz req/s": ratios["overview"] >= 0.5,
        "course analytics >= 50% of healthz req/s": ratios["course_analytics"] >= 0.5,
        "course analytics p99 < 20 ms at 50 clients": loads["course_analytics"].p99_ms < 20,
        "HTTP enrolments >= 50,000 events/s": http_enrol >= 50_000,
        "HTTP enrolments >= 70% of record_many": http_enrol >= 0.7 * in_process,
    }
    bench.run.meta["service"] = figures
    bench.console.print(_table(figures))
    bench.flush()


def _table(figures: dict[str, Any]) -> Table:
    title = (
        f"HTTP service (1 worker, 50 connections; GETs: medians of {figures['rounds']} "
        "interleaved rounds)"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("What")
    table.add_column("req/s or events/s", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("service CPU µs/req", justify="right")
    table.add_column("store CPU µs/req", justify="right")
    for load in figures["gets"].values():
        table.add_row(
            f"GET {load['path']}",
            f"{load['requests_per_second']:,.0f}",
            f"{load['p50_ms']:.2f}",
            f"{load['p99_ms']:.2f}",
            f"{load['service_cpu_us_per_request']:.0f}",
            f"{load['store_cpu_us_per_request']:.0f}",
        )
    for name, ratio in figures["ratio_to_healthz"].items():
        table.add_row(f"{name} / healthz req/s, same round", f"{ratio:.0%}", "", "")
    ingest = figures["ingest"]
    table.add_row("POST /events, enrolments", f"{ingest['http_enrolments_per_second']:,}", "", "")
    table.add_row(
        "record_many, enrolments", f"{ingest['record_many_enrolments_per_second']:,}", "", ""
    )
    table.add_row("POST /events, mixed", f"{ingest['http_mixed_per_second']:,}", "", "")
    table.add_row("record_many, mixed", f"{ingest['record_many_mixed_per_second']:,}", "", "")
    for target, met in figures["targets"].items():
        table.add_row(f"target: {target}", "met" if met else "[red]missed[/]", "", "", "", "")
    return table
