"""What a run measured, the issue's targets judged against it, and the JSON form of both."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Kind = Literal["latency", "throughput", "memory"]

#: workload key -> (title, what the size counts)
WORKLOADS: dict[str, tuple[str, str]] = {
    "course_analytics": ("Course detailed analytics", "learners"),
    "credential_analytics": ("Credential claim analytics", "certificates"),
    "overview": ("Overview metrics", "courses"),
    "time_series": ("Enrolment time series", "days"),
    "single_writes": ("Single-event writes (enrolment)", "events"),
    "bulk_ingest": ("Bulk ingest (enrolments)", "events"),
    "bulk_ingest_stream": ("Bulk ingest, streamed (enrolments)", "events"),
    "bulk_ingest_mixed": ("Bulk ingest (mixed stream)", "events"),
    "memory": ("Memory per enrolled learner", "learners"),
    "start_as_written": ("Embedded server start, AOF never rewritten", "learners"),
    "start_compacted": ("Embedded server start, AOF rewritten", "learners"),
    "command_compacted": ("A CLI command, whole (report, AOF rewritten)", "learners"),
}

SYSTEMS = ("library", "seed", "postgres", "ceiling")


@dataclass
class Measurement:
    """One figure: the median of ``samples`` (seconds per call, events/s, or bytes)."""

    workload: str
    size: int
    system: str
    kind: Kind
    samples: list[float]
    calls: int = 1  # calls (or events) per repetition
    note: str = ""

    @property
    def value(self) -> float:
        return statistics.median(self.samples)


@dataclass
class Target:
    name: str
    required: str
    measured: str
    met: bool | None  # None: not measured in this run (e.g. a full-run size in --quick)


@dataclass
class Run:
    meta: dict[str, Any] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def add(self, m: Measurement) -> Measurement:
        self.measurements.append(m)
        return m

    def find(self, workload: str, system: str, size: int | None = None) -> Measurement | None:
        for m in self.measurements:
            if m.workload == workload and m.system == system and (size is None or m.size == size):
                return m
        return None

    def sizes(self, workload: str) -> list[int]:
        return sorted({m.size for m in self.measurements if m.workload == workload})

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "measurements": [{**asdict(m), "median": m.value} for m in self.measurements],
            "targets": [asdict(t) for t in self.targets],
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Run:
        raw = json.loads(path.read_text(encoding="utf-8"))
        run = cls(meta=raw["meta"])
        for m in raw["measurements"]:
            m.pop("median", None)
            run.measurements.append(Measurement(**m))
        run.targets = [Target(**t) for t in raw["targets"]]
        return run


def advantage(run: Run, workload: str, other: str, size: int) -> float | None:
    """How many times better the library is than ``other`` (higher is better for us)."""
    ours, theirs = run.find(workload, "library", size), run.find(workload, other, size)
    if ours is None or theirs is None or ours.value == 0 or theirs.value == 0:
        return None
    if ours.kind == "latency":
        return theirs.value / ours.value
    if ours.kind == "throughput":
        return ours.value / theirs.value
    return theirs.value / ours.value  # memory: seed bytes over ours (>= 1/1.3 is the target)


def judge(run: Run) -> list[Target]:
    """The issue's targets against this run's figures."""
    targets: list[Target] = []

    def ratio_target(name: str, workload: str, other: str, size: int, at_least: float) -> None:
        found = advantage(run, workload, other, size)
        targets.append(
            Target(
                name=name,
                required=f">= {at_least:g}x",
                measured="not measured" if found is None else f"{found:,.1f}x",
                met=None if found is None else found >= at_least,
            )
        )

    ratio_target(
        "Course analytics, 100k learners, vs seed", "course_analytics", "seed", 100_000, 1000
    )
    at_million = run.find("course_analytics", "library", 1_000_000)
    targets.append(
        Target(
            name="Course analytics, 1M learners, median",
            required="< 1 ms",
            measured="not measured" if at_million is None else f"{at_million.value * 1e3:.3f} ms",
            met=None if at_million is None else at_million.value < 1e-3,
        )
    )
    ours = [run.find("course_analytics", "library", n) for n in run.sizes("course_analytics")]
    values = [m.value for m in ours if m is not None]
    full_range = {1_000, 1_000_000} <= set(run.sizes("course_analytics"))
    if values:
        flat = max(values) / min(values)
        sizes = run.sizes("course_analytics")
        targets.append(
            Target(
                name=f"Course analytics flat from {sizes[0]:,} to {sizes[-1]:,} learners",
                required="<= 2x (1k to 1M)",
                measured=f"{flat:.2f}x",
                met=(flat <= 2) if full_range else None,
            )
        )
    ratio_target(
        "Credential analytics, 100k certificates, vs seed",
        "credential_analytics",
        "seed",
        100_000,
        500,
    )
    # The faster of record_many's modes (plain, streamed) is the library's bulk ingest figure.
    bulk_sizes = run.sizes("bulk_ingest")
    candidates = [
        m
        for workload in ("bulk_ingest", "bulk_ingest_stream")
        for m in [run.find(workload, "library", bulk_sizes[-1]) if bulk_sizes else None]
        if m is not None
    ]
    bulk = max(candidates, key=lambda m: m.value) if candidates else None
    bulk_workload = bulk.workload if bulk else "bulk_ingest"
    targets.append(
        Target(
            name="Bulk ingest from one Python process"
            + (" (streamed)" if bulk_workload == "bulk_ingest_stream" else ""),
            required=">= 100,000 events/s",
            measured="not measured" if bulk is None else f"{bulk.value:,.0f} events/s",
            met=None if bulk is None else bulk.value >= 100_000,
        )
    )
    if bulk_sizes:
        ratio_target(
            "Bulk ingest vs the seed's write path", bulk_workload, "seed", bulk_sizes[-1], 25
        )
    for size in run.sizes("single_writes")[-1:]:
        ratio_target(
            "Single-event writes vs the seed's write path", "single_writes", "seed", size, 3
        )
    for size in run.sizes("memory")[-1:]:
        found = advantage(run, "memory", "seed", size)
        targets.append(
            Target(
                name="Memory per enrolled learner vs the seed layout",
                required="<= 1.3x",
                measured="not measured" if found is None else f"{1 / found:.3f}x",
                met=None if found is None else 1 / found <= 1.3,
            )
        )
    ratio_target(
        "Course analytics, 1M learners, vs PostgreSQL",
        "course_analytics",
        "postgres",
        1_000_000,
        50,
    )
    return targets
