"""The workloads: load the same data for every system, check the answers agree, then time them.

Each phase starts from an empty database. Data the older system would have written is loaded in
its layout (``data.load_seed_layout``) and the library's derived keys are built by ``reindex``;
the same rows go to PostgreSQL with COPY. Before anything is timed, the library, the seed's
algorithm and SQL answer the question once and must give equal answers: a mismatch stops the run.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import redis
from rich.console import Console
from rich.markup import escape

import training_analytics as ta
from training_analytics import ingest as ta_ingest

from . import data, startup
from ._redis import command, queue
from .baseline_seed import CourseFigures, CredentialFigures, OverviewFigures, SeedModel
from .data import MODULES, NOW, NOW_MS, Learner
from .results import Kind, Measurement, Run
from .timing import Timing, measure, time_once

if TYPE_CHECKING:
    # Only a type here: psycopg is an optional dependency, imported when PostgreSQL is used.
    from .postgres import Postgres


class MismatchError(Exception):
    """Two systems gave different answers on the same data: timing them would mean nothing."""


@dataclass(frozen=True)
class Plan:
    mode: str
    course_sizes: tuple[int, ...]
    certificate_sizes: tuple[int, ...]
    course_counts: tuple[int, ...]
    series_days: tuple[int, ...]
    single_events: int  # events per repetition of the single-event write loop
    bulk_events: int  # events per repetition of bulk ingest
    memory_learners: int
    repeat: int  # repetitions of fast calls
    slow_repeat: int  # repetitions of calls that take a second or more
    learners_per_overview_course: int = 20
    batch_size: int = 1000
    startup_learners: int = 20_000  # learners in the store whose start is timed (startup phase)
    # ingest-mixed: learner-courses of the mixed history loaded three ways, of the smaller one
    # loaded kind by kind and under each encoding setting, and repetitions of each load
    mixed_pairs: int = 3_000
    mixed_kind_pairs: int = 3_000
    mixed_repeat: int = 3
    # cluster: the mixed history loaded into the single server and the cluster (learner-courses,
    # modules per course, repetitions), the course sizes whose analytics are timed and the calls
    # per size, the spread store (courses, enrolments per course, certificates), and the
    # learner-courses of the one hot course
    cluster_pairs: int = 200
    cluster_modules: int = 8
    cluster_repeat: int = 1
    cluster_course_sizes: tuple[int, ...] = (100, 500)
    cluster_latency_calls: int = 100
    cluster_spread_courses: int = 200
    cluster_spread_learners: int = 1
    cluster_spread_certificates: int = 1_000
    cluster_hot_pairs: int = 200


QUICK = Plan(
    mode="quick",
    course_sizes=(1_000, 10_000),
    certificate_sizes=(1_000, 10_000),
    course_counts=(10, 100),
    series_days=(30, 365),
    single_events=200,
    bulk_events=10_000,
    memory_learners=2_000,
    repeat=5,
    slow_repeat=3,
)

FULL = Plan(
    mode="full",
    course_sizes=(1_000, 10_000, 100_000, 1_000_000),
    certificate_sizes=(1_000, 10_000, 100_000),
    course_counts=(10, 100, 1_000),
    series_days=(30, 365),
    single_events=3_000,
    bulk_events=300_000,
    memory_learners=100_000,
    repeat=11,
    slow_repeat=3,
    startup_learners=1_000_000,
    mixed_pairs=200_000,
    mixed_kind_pairs=20_000,
    mixed_repeat=1,
    cluster_pairs=20_000,
    cluster_repeat=3,
    cluster_course_sizes=(1_000, 10_000, 100_000),
    cluster_latency_calls=2_000,
    cluster_spread_courses=1_000,
    cluster_spread_learners=10,
    cluster_spread_certificates=100_000,
    cluster_hot_pairs=20_000,
)

PHASES = (
    "course",
    "credentials",
    "overview",
    "writes",
    "memory",
    "startup",
    "service",
    "ingest-mixed",
    "cluster",
)


def course_figures(result: ta.CourseDetailedAnalytics) -> CourseFigures:
    return CourseFigures(
        enrollments=result.enrollments,
        completions=result.completions,
        completion_rate=result.completion_rate,
        average_score=result.average_score,
        average_time_to_complete=result.average_time_to_complete,
        dropoff=tuple((d.module_id, d.dropoff_rate) for d in result.dropoff_rates),
    )


def credential_figures(result: ta.CredentialClaimAnalytics) -> CredentialFigures:
    return CredentialFigures(
        total_issued=result.total_issued,
        total_claimed=result.total_claimed,
        claim_rate=result.claim_rate,
        average_claim_time_hours=result.average_claim_time_hours,
        pending=result.pending,
        expiring_in_30_days=result.expiring_in_30_days,
    )


def overview_figures(result: ta.TrainingOverviewMetrics) -> OverviewFigures:
    return OverviewFigures(
        total_courses=result.total_courses,
        published_courses=result.published_courses,
        draft_courses=result.draft_courses,
        total_enrollments=result.total_enrollments,
        average_completion_rate=result.average_completion_rate,
        total_certifications=result.total_certifications,
    )


def check(question: str, ours: object, theirs: object, who: str) -> None:
    if ours != theirs:
        raise MismatchError(f"{question}: library answered {ours!r}, {who} answered {theirs!r}")


def _label(n: int) -> str:
    """1000 -> "1k", 1000000 -> "1m": short course ids that still say the size."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


class Bench:
    """One run: the server, the systems under test, and what they measured."""

    def __init__(
        self,
        client: redis.Redis,
        plan: Plan,
        run: Run,
        console: Console,
        pg: Postgres | None,
    ) -> None:
        self.client = client
        self.plan = plan
        self.run = run
        self.console = console
        self.pg = pg
        # One fixed clock for every system, so time-relative questions are the same question.
        self.lib = ta.TrainingAnalytics(client, clock=lambda: NOW)
        self.seed = SeedModel(client, now_ms=NOW_MS)

    # --- helpers ----------------------------------------------------------------------------

    def log(self, message: str) -> None:
        self.console.log(message)

    def flush(self) -> None:
        command(self.client, "FLUSHDB", "SYNC")

    def service_phase(self) -> None:
        """The HTTP service under load: see ``bench/service.py``."""
        from .service import service_phase  # noqa: PLC0415 - imports this module

        service_phase(self)

    def ingest_mixed_phase(self) -> None:
        """A mixed history imported three ways, kind by kind, and its memory: see
        ``bench/ingest_mixed.py``."""
        try:
            # DuckDB and pyarrow are optional dependencies (the bench extra), as psycopg is.
            from .ingest_mixed import ingest_mixed_phase  # noqa: PLC0415 - imports this module
        except ImportError as exc:
            reason = f"skipped: {exc} (pip install 'training-analytics[bench]')"
            self.run.meta["ingest_mixed"] = {"skipped": reason}
            self.log(escape(f"ingest-mixed {reason}"))  # "[bench]" is not Rich markup
            return
        ingest_mixed_phase(self)

    def cluster_phase(self) -> None:
        """The same workloads on this server and on a local three-primary cluster: see
        ``bench/cluster.py``."""
        from .cluster import cluster_phase  # noqa: PLC0415 - imports this module

        cluster_phase(self)

    def used_memory(self) -> int:
        info: dict[str, Any] = self.client.info("memory")
        return int(info["used_memory"])

    def key_bytes(self, pattern: str) -> int:
        """MEMORY USAGE summed over the keys matching ``pattern`` (every sample of each key)."""
        total = 0
        for key in self.client.scan_iter(match=pattern, count=1000):
            total += int(command(self.client, "MEMORY", "USAGE", key, "SAMPLES", 0) or 0)
        return total

    def server_slowest(self, phase: str, top: int = 5) -> None:
        """Keep the phase's slowest server commands (SLOWLOG), then clear the log."""
        entries = command(self.client, "SLOWLOG", "GET", -1)
        # FLUSHDB is the benchmark's own housekeeping between phases, not a workload's cost.
        measured = [e for e in entries if str(e[3][0]).upper() != "FLUSHDB"]
        slowest = sorted(measured, key=lambda e: -int(e[2]))[:top]
        self.run.meta.setdefault("slowlog", {})[phase] = [
            {"micros": int(e[2]), "command": " ".join(str(a) for a in e[3][:3])[:100]}
            for e in slowest
        ]
        command(self.client, "SLOWLOG", "RESET")

    def record(
        self, workload: str, size: int, system: str, kind: Kind, timing: Timing, *, note: str = ""
    ) -> Measurement:
        m = self.run.add(
            Measurement(workload, size, system, kind, list(timing.samples), timing.calls, note)
        )
        shown = f"{m.value * 1e3:.3f} ms" if kind == "latency" else f"{m.value:,.0f}/s"
        self.log(f"{workload} {size:,} {system}: {shown} (spread {timing.spread:.0%})")
        return m

    def time_read(
        self, workload: str, size: int, system: str, fn: Callable[[], object], *, slow: bool
    ) -> None:
        """Time a read whose answer was just checked (that call was the warm-up)."""
        repeat = self.plan.slow_repeat if slow else self.plan.repeat
        timing = measure(fn, repeat=repeat, warm=False, min_time=0.05, calls=1 if slow else None)
        self.record(workload, size, system, "latency", timing)

    # --- phase: course analytics and time series ---------------------------------------------

    def course_phase(self) -> None:
        plan, pg = self.plan, self.pg
        self.flush()
        if pg:
            pg.reset()
        course_ids: dict[int, str] = {}
        for order, n in enumerate(plan.course_sizes):
            course_id = f"course-{_label(n)}"
            course_ids[n] = course_id
            self.lib.create_training_course(data.course_definition(course_id, order=order))
            self.log(f"loading {n:,} learners into {course_id} (seed layout, PostgreSQL COPY)")
            rows = data.learners(course_id, n)
            fields = [row.progress_fields() for row in rows]
            data.load_seed_layout(self.client, rows, fields=fields)
            if pg:
                pg.load_learners(rows, fields)
            del rows, fields
        if pg:
            pg.load_courses([(c, True, i) for i, c in enumerate(course_ids.values())])
            self.log("PostgreSQL: building indexes, VACUUM ANALYZE")
            pg.add_indexes()
        self.log("library: reindex (derived keys from the seed layout)")
        elapsed = time_once(self.lib.reindex)
        self.run.meta["reindex_seconds"] = round(elapsed, 1)
        learners_total = sum(plan.course_sizes)
        # Summed per key: a used_memory delta this small drowns in allocator noise.
        derived = self.key_bytes("training:agg:*")
        self.run.meta["course_store"] = {
            "learners": learners_total,
            "used_memory": self.used_memory(),
            "derived_keys_bytes": derived,
            "derived_bytes_per_learner": round(derived / learners_total, 4),
        }
        for n, course_id in course_ids.items():
            slow = n >= 100_000
            ours = course_figures(self.lib.get_course_detailed_analytics(course_id))
            check(
                f"course analytics at {n:,}",
                ours,
                self.seed.course_detailed_analytics(course_id),
                "the seed's algorithm",
            )
            if pg:
                check(
                    f"course analytics at {n:,}",
                    ours,
                    pg.course_detailed_analytics(course_id),
                    "PostgreSQL",
                )
            self.time_read(
                "course_analytics",
                n,
                "library",
                partial(self.lib.get_course_detailed_analytics, course_id),
                slow=False,
            )
            self.time_read(
                "course_analytics",
                n,
                "seed",
                partial(self.seed.course_detailed_analytics, course_id),
                slow=slow,
            )
            if pg:
                self.time_read(
                    "course_analytics",
                    n,
                    "postgres",
                    partial(pg.course_detailed_analytics, course_id),
                    slow=slow,
                )
        self.series_phase()

    def series_phase(self) -> None:
        """Global enrolment series over the last N days, on the course phase's store."""
        pg = self.pg
        end = NOW.date()
        for days in self.plan.series_days:
            start = end - timedelta(days=days - 1)

            def ours(start: date = start) -> list[tuple[str, int]]:
                points = self.lib.get_enrollment_time_series(start, end)
                return [(p.date, p.count) for p in points]

            answer = ours()
            check(
                f"time series over {days} days",
                answer,
                self.seed.daily_enrollment_counts(start, end),
                "the seed's algorithm",
            )
            if pg:
                check(
                    f"time series over {days} days",
                    answer,
                    pg.daily_enrollment_counts(start, end),
                    "PostgreSQL",
                )
            self.time_read("time_series", days, "library", ours, slow=False)
            self.time_read(
                "time_series",
                days,
                "seed",
                partial(self.seed.daily_enrollment_counts, start, end),
                slow=False,
            )
            if pg:
                self.time_read(
                    "time_series",
                    days,
                    "postgres",
                    partial(pg.daily_enrollment_counts, start, end),
                    slow=False,
                )

    # --- phase: credential claim analytics ----------------------------------------------------

    def credentials_phase(self) -> None:
        pg = self.pg
        self.flush()
        if pg:
            pg.reset()
            pg.add_indexes()
        everything = data.certificates(max(self.plan.certificate_sizes))
        loaded = 0
        for n in self.plan.certificate_sizes:
            part = everything[loaded:n]
            self.log(f"loading certificates {loaded:,}..{n:,}")
            data.load_seed_layout(self.client, certificate_rows=part)
            self.lib.reindex()
            if pg:
                pg.load_certificates(part)
                pg.analyze()
            loaded = n
            ours = credential_figures(self.lib.get_credential_claim_analytics())
            check(
                f"credential analytics at {n:,}",
                ours,
                self.seed.credential_claim_analytics(),
                "the seed's algorithm",
            )
            if pg:
                check(
                    f"credential analytics at {n:,}",
                    ours,
                    pg.credential_claim_analytics(NOW_MS),
                    "PostgreSQL",
                )
            self.time_read(
                "credential_analytics",
                n,
                "library",
                self.lib.get_credential_claim_analytics,
                slow=False,
            )
            self.time_read(
                "credential_analytics",
                n,
                "seed",
                self.seed.credential_claim_analytics,
                slow=n >= 100_000,
            )
            if pg:
                self.time_read(
                    "credential_analytics",
                    n,
                    "postgres",
                    lambda: pg.credential_claim_analytics(NOW_MS),
                    slow=False,
                )

    # --- phase: overview --------------------------------------------------------------------

    def overview_phase(self) -> None:
        pg = self.pg
        self.flush()
        if pg:
            pg.reset()
        created = 0
        per_course = self.plan.learners_per_overview_course
        for count in self.plan.course_counts:
            new_courses: list[tuple[str, bool, int]] = []
            rows: list[Learner] = []
            for i in range(created, count):
                course_id = f"ov{i:05d}"
                published = i % 4 != 3  # a quarter are drafts
                self.lib.create_training_course(
                    data.course_definition(course_id, published=published, order=i)
                )
                new_courses.append((course_id, published, i))
                # Courses of different sizes, so completion rates differ from course to course.
                rows += data.learners(course_id, per_course + i % 7)
            created = count
            self.log(f"overview: {count} courses")
            data.load_seed_layout(self.client, rows)
            self.lib.reindex()
            if pg:
                pg.load_courses(new_courses)
                pg.load_learners(rows, [r.progress_fields() for r in rows])
                if count == self.plan.course_counts[0]:
                    pg.add_indexes()
                else:
                    pg.analyze()
            ours = overview_figures(self.lib.get_training_overview_metrics())
            check(
                f"overview of {count} courses",
                ours,
                self.seed.overview_metrics(),
                "the seed's algorithm",
            )
            if pg:
                check(f"overview of {count} courses", ours, pg.overview_metrics(), "PostgreSQL")
            self.time_read(
                "overview", count, "library", self.lib.get_training_overview_metrics, slow=False
            )
            self.time_read("overview", count, "seed", self.seed.overview_metrics, slow=False)
            if pg:
                self.time_read("overview", count, "postgres", pg.overview_metrics, slow=False)

    # --- phase: writes ----------------------------------------------------------------------

    def _key_state(self, prefix: str) -> dict[str, Any]:
        """Everything the seed's enrolment path leaves under ``prefix``, without the prefix."""
        state: dict[str, Any] = {}
        literal = ta.keys.glob_escape(prefix)
        for key in self.client.scan_iter(match=f"{literal}training:enrollment:date:*", count=1000):
            state[str(key)[len(prefix) :]] = self.client.get(key)
        for key in self.client.scan_iter(match=f"{literal}training:enrollments:*", count=1000):
            state[str(key)[len(prefix) :]] = sorted(self.client.smembers(key))
        series = f"{prefix}training:enrollment:timeseries"
        state["training:enrollment:timeseries"] = self.client.zrange(series, 0, -1, withscores=True)
        return state

    def writes_phase(self) -> None:
        """Single-event writes (library, seed, PostgreSQL), then bulk ingest and the ceiling."""
        plan, pg = self.plan, self.pg
        self.flush()
        if pg:
            pg.reset()
            pg.add_indexes()
        # Library and seed write side by side in one server under two prefixes, alternating
        # repetitions so that drift on the machine hits both alike; then their keys must match.
        lib = ta.TrainingAnalytics(self.client, prefix="l:", clock=lambda: NOW)
        seed = SeedModel(self.client, now_ms=NOW_MS, prefix="s:")
        n = plan.single_events
        lib.record_enrollment("warm", "warm", at=NOW)
        seed.record_enrollment("warm", "warm", NOW_MS)
        samples: dict[str, list[float]] = {"library": [], "seed": [], "postgres": []}
        for rep in range(plan.slow_repeat):
            events = [(f"w{rep}-{i}", NOW_MS - i * 37_000) for i in range(n)]
            moments = [data_moment(ms) for _, ms in events]

            def run_lib(
                events: Sequence[tuple[str, int]] = events, moments: Sequence[datetime] = moments
            ) -> None:
                for (user, _), at in zip(events, moments, strict=True):
                    lib.record_enrollment(user, "writes", at=at)

            def run_seed(events: Sequence[tuple[str, int]] = events) -> None:
                for user, ms in events:
                    seed.record_enrollment(user, "writes", ms)

            order = [("library", run_lib), ("seed", run_seed)]
            for system, fn in order if rep % 2 == 0 else order[::-1]:
                samples[system].append(n / time_once(fn))
            if pg:

                def run_pg(events: Sequence[tuple[str, int]] = events) -> None:
                    for user, ms in events:
                        pg.insert_enrollment("writes", user, ms)

                samples["postgres"].append(n / time_once(run_pg))
        check(
            "keys left by single-event enrolments",
            self._key_state("l:"),
            self._key_state("s:"),
            "the seed's write path",
        )
        for system, values in samples.items():
            if values:
                self.record(
                    "single_writes",
                    n,
                    system,
                    "throughput",
                    Timing(tuple(values), n),
                    note="events/s",
                )
        self.bulk_phase()

    def bulk_phase(self) -> None:
        plan, pg = self.plan, self.pg
        n = plan.bulk_events
        ceiling = self.server_ceiling()
        ceiling_m = self.record(
            "bulk_ingest",
            n,
            "ceiling",
            "throughput",
            ceiling,
            note="pipelined SADD+INCR ops/s from one Python process",
        )
        variants = [("bulk_ingest", False)]
        if "stream" in inspect.signature(ta_ingest.record_many).parameters:
            variants.append(("bulk_ingest_stream", True))
        seed_single = self.run.find("single_writes", "seed")
        for workload, stream in variants:
            rates = self.ingest_rates(n, stream=stream)
            note = f"record_many, batch_size={plan.batch_size}" + (
                ", stream=True" if stream else ""
            )
            self.record(workload, n, "library", "throughput", Timing(tuple(rates), n), note=note)
            if workload != "bulk_ingest":
                # The same ceiling, for the "fraction of the ceiling" column of this row too.
                self.run.add(replace(ceiling_m, workload=workload))
            if seed_single is not None:
                self.run.add(
                    Measurement(
                        workload,
                        n,
                        "seed",
                        "throughput",
                        list(seed_single.samples),
                        seed_single.calls,
                        note="the seed's write path (it had no batch API)",
                    )
                )
        if pg:
            pg_rates: list[float] = []
            for rep in range(plan.slow_repeat):
                rows = [(f"pgbulk{rep}", f"b{i}", NOW_MS - i * 997) for i in range(n)]
                pg_rates.append(n / time_once(partial(pg.copy_enrollments, rows)))
            self.record(
                "bulk_ingest",
                n,
                "postgres",
                "throughput",
                Timing(tuple(pg_rates), n),
                note="COPY into the indexed table",
            )

    def ingest_rates(self, n: int, *, stream: bool) -> list[float]:
        """Events/s of ``record_many`` over ``n`` new enrolments, once per repetition."""
        rates: list[float] = []
        for rep in range(self.plan.slow_repeat):
            course_id = f"bulk{rep}{'s' if stream else ''}"
            events = [
                ta.EnrollmentEvent(
                    user_id=f"b{i}", course_id=course_id, at=data_moment(NOW_MS - i * 997)
                )
                for i in range(n)
            ]
            start = time.perf_counter()
            if stream:
                result = self.lib.record_many(events, batch_size=self.plan.batch_size, stream=True)
            else:
                result = self.lib.record_many(events, batch_size=self.plan.batch_size)
            rates.append(n / (time.perf_counter() - start))
            check(f"record_many of {n:,} enrolments: applied", result.applied, n, "the event count")
            ours = self.lib.get_course_detailed_analytics(course_id)
            check(
                f"enrolments after record_many ({course_id})",
                ours.enrollments,
                int(self.client.scard(f"training:enrollments:{course_id}")),
                "the seed's SCARD",
            )
        return rates

    def server_ceiling(self, ops: int = 200_000) -> Timing:
        """Pipelined SADD/INCR ops/s from this Python process: what the server and client allow."""
        rates: list[float] = []
        for rep in range(self.plan.slow_repeat):

            def blast(rep: int = rep) -> None:
                pipe = self.client.pipeline(transaction=False)
                for i in range(ops // 2):
                    queue(pipe, "SADD", f"ceiling:{rep}:{i % 50}", f"m{i}")
                    queue(pipe, "INCR", f"ceiling:{rep}:day:{i % 30}")
                    if i % 500 == 499:
                        pipe.execute()
                pipe.execute()

            rates.append(ops / time_once(blast))
        return Timing(tuple(rates), ops)

    # --- phase: memory and a mixed stream -------------------------------------------------------

    def startup_phase(self) -> None:
        # Its own module: it runs an embedded server of its own, not this run's server.
        startup.startup_phase(self)

    def memory_phase(self) -> None:
        plan = self.plan
        n = plan.memory_learners
        course_id = "memory"
        rows = data.learners(course_id, n)
        events = mixed_events(rows)
        # The library's own write path: record_many of every event.
        self.flush()
        self.lib.create_training_course(data.course_definition(course_id))
        self.lib.record_many([], batch_size=plan.batch_size)
        before = self.used_memory()
        self.log(f"memory: record_many of {len(events):,} events for {n:,} learners")
        elapsed = time_once(lambda: self.lib.record_many(events, batch_size=plan.batch_size))
        ours_bytes = self.used_memory() - before
        self.run.meta["memory_store_derived_bytes"] = self.key_bytes("training:agg:*")
        self.record(
            "bulk_ingest_mixed",
            len(events),
            "library",
            "throughput",
            Timing((len(events) / elapsed,), len(events)),
            note="one repetition; enrol, module starts/completions, progress, completion",
        )
        ours = course_figures(self.lib.get_course_detailed_analytics(course_id))
        sample = [r.user_id for r in rows[:: max(1, n // 50)]]
        written = {u: self.client.hgetall(f"training:progress:{u}:{course_id}") for u in sample}
        # The older system's layout of the same learners.
        self.flush()
        self.lib.create_training_course(data.course_definition(course_id))
        before = self.used_memory()
        data.load_seed_layout(self.client, rows)
        seed_bytes = self.used_memory() - before
        check(
            "course analytics after a mixed stream",
            ours,
            self.seed.course_detailed_analytics(course_id),
            "the seed's algorithm on its layout",
        )
        seed_written = {
            u: self.client.hgetall(f"training:progress:{u}:{course_id}") for u in sample
        }
        check("progress hashes", written, seed_written, "the seed's layout")
        self.run.add(
            Measurement(
                "memory",
                n,
                "library",
                "memory",
                [ours_bytes / n],
                note="base + derived keys, INFO used_memory delta",
            )
        )
        self.run.add(
            Measurement(
                "memory",
                n,
                "seed",
                "memory",
                [seed_bytes / n],
                note="base keys as the seed writes them",
            )
        )
        self.log(f"memory: library {ours_bytes / n:,.0f} B/learner, seed {seed_bytes / n:,.0f}")


def data_moment(ms: int) -> datetime:
    return NOW + timedelta(milliseconds=ms - NOW_MS)


def mixed_events(rows: Sequence[Learner]) -> list[Any]:
    """Each learner's history as library events, in the order it happened."""
    events: list[Any] = []
    for r in rows:
        events.append(
            ta.EnrollmentEvent(
                user_id=r.user_id, course_id=r.course_id, at=data_moment(r.enrolled_ms)
            )
        )
        for module_id in MODULES[: r.modules_started]:
            events.append(
                ta.ModuleStartEvent(user_id=r.user_id, course_id=r.course_id, module_id=module_id)
            )
        for module_id in MODULES[: r.modules_completed]:
            events.append(
                ta.ModuleCompletionEvent(
                    user_id=r.user_id, course_id=r.course_id, module_id=module_id
                )
            )
        progress = ta.EnhancedTrainingProgress.model_validate(r.progress())
        events.append(ta.ProgressEvent(progress=progress))
        if r.completed_ms is not None:
            events.append(
                ta.CompletionEvent(
                    user_id=r.user_id, course_id=r.course_id, at=data_moment(r.completed_ms)
                )
            )
    return events
