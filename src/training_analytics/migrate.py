"""``migrate``: copy a store into another layout (one server <-> a cluster), then prove it.

The copy **replays the source's records through the target's write path**: each page of
``export_page`` on the source (the records that rebuild its analytics, read from the base keys
only) is applied by ``import_records`` on the target, which writes the target's own layout
(hash tags, buckets, the course registry) and builds every derived key as any write does. We
chose that over copying keys with new names (docs/architecture.md, "migrate"): the older
system's stores may lack derived keys, or hold them stale, and a replay needs none of them;
the same code writes and checks everything (no second writer of the cluster layout to keep
in step); the write path is idempotent, which is what makes an interrupted run safe to run
again.

Resumable. The target keeps a checkpoint (``training:meta:migrate``, JSON: the source's name,
the export cursor of the next page, counts) written before the first record and after every
page. A run that finds one from the same source goes on from its cursor; the page that was in
flight when the last run died is applied again, which changes nothing (writes are
idempotent). A target that holds training data and no checkpoint is refused
(``MigrationError``), as is one whose checkpoint names another source.

Then it verifies: every analytics answer is read on both stores and compared (per course:
detailed analytics, drop-off, funnel, counts; every learner's progress and every certificate by
id, streamed; the global figures), one row per kind of answer.

Sans-I/O: :func:`migration` is a generator yielding :class:`Step` (which store, which
operation) and receiving the operation's result; :func:`run_migration` and
:func:`arun_migration` drive it on two facades, sync or asyncio. Memory stays constant in the
size of the stores (one page at a time; O(courses) for the per-course comparisons).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import Field

from . import (
    analytics,
    catalog,
    certifications,
    courses,
    credentials,
    enrollments,
    timeseries,
    zone,
)
from ._context import Context
from ._protocol import Op, gather, single
from ._time import day_bucket, from_epoch_ms, parse_timestamp_ms
from .errors import (
    InvalidIdError,
    MigrationError,
    NotIndexedError,
    StoreError,
    TrainingAnalyticsError,
)
from .keys import check_id, glob_escape
from .scanning import scan_page
from .transfer import DEFAULT_PAGE_SIZE, ExportCursor, export_page, import_records
from .types import SeedModel

if TYPE_CHECKING:
    from .facade import AsyncTrainingAnalytics, TrainingAnalytics

__all__ = [
    "Comparison",
    "MigrationCheckpoint",
    "MigrationReport",
    "Step",
    "arun_migration",
    "migration",
    "run_migration",
]

Side = Literal["source", "target"]
T = TypeVar("T")
#: Courses (or learners, certificates) whose answers one round trip of the comparison reads.
COMPARE_CHUNK = 50
#: Rejected records kept in the report (the count is exact; the messages are examples).
KEPT_REJECTIONS = 20
_UTC = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Step:
    """Run ``op(ctx)`` on one of the two stores; the operation's result is sent back."""

    side: Side
    op: Callable[[Context], Op[Any]]


class MigrationCheckpoint(SeedModel):
    """Where a migration stands, kept in the target (``TrainingKeys.migration_record``)."""

    source: str
    """Which store this copies (its address without credentials, and its prefix)."""
    cursor: ExportCursor | None = Field(default_factory=ExportCursor)
    """The source's next export page; None once everything was copied."""
    records: int = 0
    applied: int = 0
    unchanged: int = 0
    rejected: int = 0
    skipped: int = 0
    first_ms: int | None = None
    """The earliest and latest event time copied (the range of the daily series compared)."""
    last_ms: int | None = None
    runs: int = 1
    """How many runs worked on this migration (more than 1: it was interrupted and resumed)."""


class Comparison(SeedModel):
    """One kind of answer read on both stores."""

    answer: str
    compared: int = 0
    equal: int = 0
    not_comparable: int = 0
    note: str = ""
    example: str = ""
    """The first answer that differed (which course, learner or certificate), if any."""

    @property
    def status(self) -> str:
        if self.compared and self.equal == self.compared:
            return "equal"
        if self.equal < self.compared - self.not_comparable:
            return "differs"
        return "not compared"


class MigrationReport(SeedModel):
    checkpoint: MigrationCheckpoint
    resumed: bool = False
    copied_now: int = 0
    """Records copied by this run (the checkpoint counts every run's)."""
    comparisons: list[Comparison] = Field(default_factory=list)
    rejections: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)

    @property
    def equal(self) -> bool:
        """No answer differs (answers a store cannot give, as a source not reindexed, are
        listed, not failed)."""
        return all(c.status != "differs" for c in self.comparisons)


Migration = Generator[Step, Any, MigrationReport]


# --- store-level operations (sans-I/O, run on either store) -----------------------------------


def read_checkpoint(ctx: Context) -> Op[MigrationCheckpoint | None]:
    value = yield from single("GET", ctx.keys.migration_record())
    if value is None:
        return None
    try:
        return MigrationCheckpoint.model_validate_json(value)
    except ValueError as exc:
        raise StoreError(f"{ctx.keys.migration_record()} is not a migration checkpoint") from exc


def save_checkpoint(ctx: Context, checkpoint: MigrationCheckpoint) -> Op[None]:
    yield from single("SET", ctx.keys.migration_record(), checkpoint.model_dump_json())


def mark_migrated(ctx: Context) -> Op[None]:
    """Cluster: set the store-wide index marker (``training:agg:schema:{:meta}``)."""
    if ctx.keys.cluster:
        yield from single("SET", ctx.keys.index_marker(), "1")


def holds_data(ctx: Context) -> Op[str | None]:
    """A key of training data under the prefix (one is enough), or None: the store's facts
    (``training:meta:*``: zone, layout, a migration's checkpoint) are not data."""
    meta = f"{ctx.keys.prefix}training:meta:"
    for pattern in ctx.keys.training_patterns():
        nodes: list[str] | None = None
        cursor = "0"
        while nodes is None or nodes:
            keys, nodes, cursor = yield from scan_page(
                ctx, nodes, cursor, "MATCH", pattern, "COUNT", 1000
            )
            for key in keys:
                if not str(key).startswith(meta):
                    return str(key)
    return None


def store_identity(ctx: Context) -> Op[frozenset[str]]:
    """Who answers: the server's run id, or a cluster's node ids (two URLs of one store, such
    as two nodes of a cluster, give sets that meet)."""
    if ctx.keys.cluster:
        slots = yield from single("CLUSTER", "SLOTS")
        return frozenset(str(node[2]) for entry in slots for node in entry[2:] if len(node) > 2)
    info = yield from single("INFO", "server")
    if isinstance(info, dict):
        return frozenset({str(info.get("run_id", ""))})
    for line in str(info).splitlines():
        if line.startswith("run_id:"):
            return frozenset({line.partition(":")[2].strip()})
    return frozenset()


def course_ids(ctx: Context) -> Op[set[str]]:
    """Every course with data or in the catalog: the catalog, plus on one server the courses
    of the learner sets (SCAN), on a cluster the course registry."""
    k = ctx.keys
    found: set[str] = set(
        str(c) for c in (yield from single("ZRANGE", k.all_training_courses(), 0, -1))
    )
    if k.cluster:
        found |= {str(c) for c in (yield from single("SMEMBERS", k.course_registry()))}
    else:
        for sample in (k.course_enrollments("x"), k.course_completions("x")):
            head = sample[:-1]
            nodes: list[str] | None = None
            cursor = "0"
            while nodes is None or nodes:
                keys, nodes, cursor = yield from scan_page(
                    ctx, nodes, cursor, "MATCH", glob_escape(head) + "*", "COUNT", 1000
                )
                found |= {str(key)[len(head) :] for key in keys}
    valid = set()
    for course_id in found:
        try:
            valid.add(check_id(course_id, "course id"))
        except InvalidIdError:
            continue  # not addressable by this library: neither exported nor compared
    return valid


def _settled(op: Op[Any]) -> Op[Any]:
    """An answer, or the error class it raised (an unknown course is an answer too)."""
    try:
        return (yield from op)
    except TrainingAnalyticsError as exc:
        return exc


def _answers(ops: Sequence[Op[Any]]) -> Op[list[Any]]:
    """Several answers side by side (one round trip per step), each settled on its own."""
    return gather([_settled(op) for op in ops])


# --- the migration ------------------------------------------------------------------------------


def migration(
    source_name: str,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    batch_size: int = 1000,
    verify: bool = True,
    same_place: bool = False,
    on_page: Callable[[MigrationCheckpoint], None] | None = None,
) -> Migration:
    """Copy the source into the target (resuming a checkpoint of the same source), then
    compare every answer. ``source_name`` names the source without credentials (kept in the
    checkpoint). ``same_place``: the two URLs name the same database and prefix, so the two
    are one store if the same server (or cluster) answers both. ``on_page`` is called after
    each page is applied and checkpointed."""
    source_id = yield Step("source", store_identity)
    target_id = yield Step("target", store_identity)
    check_not_same(source_id, target_id, same_place)
    checkpoint: MigrationCheckpoint | None = yield Step("target", read_checkpoint)
    resumed = checkpoint is not None
    if checkpoint is None:
        found = yield Step("target", holds_data)
        if found is not None:
            raise MigrationError(
                f"the target holds training data already (e.g. {found!r}) and no migration "
                "checkpoint: migrate copies into an empty store (or a different --to-prefix)"
            )
        checkpoint = MigrationCheckpoint(source=source_name)
    elif checkpoint.source != source_name:
        raise MigrationError(
            f"the target holds a migration from {checkpoint.source!r}, not from "
            f"{source_name!r}: finish that one, or migrate into an empty store"
        )
    else:
        checkpoint.runs += 1
    # A target in another zone or layout refuses here, before anything is written.
    yield Step("target", zone.check_before_write)
    # Written before the first record: a run killed from here on is resumed, not refused.
    yield Step("target", partial(save_checkpoint, checkpoint=checkpoint))
    report = MigrationReport(checkpoint=checkpoint, resumed=resumed)
    while checkpoint.cursor is not None:
        cursor = checkpoint.cursor
        page = yield Step("source", partial(export_page, cursor=cursor, count=page_size))
        if page.records:
            records = page.records
            result = yield Step(
                "target", partial(import_records, records=records, batch_size=batch_size)
            )
            checkpoint.applied += result.applied
            checkpoint.unchanged += result.unchanged
            checkpoint.rejected += result.rejected
            for outcome in result.results:
                if outcome.status == "rejected" and len(report.rejections) < KEPT_REJECTIONS:
                    report.rejections.append(
                        f"{records[outcome.index].get('kind', 'record')}: {outcome.error}: "
                        f"{outcome.message}"
                    )
            _note_times(checkpoint, records)
            checkpoint.records += len(records)
            report.copied_now += len(records)
        checkpoint.skipped += len(page.skipped)
        if len(report.skipped) < KEPT_REJECTIONS:
            report.skipped += page.skipped[: KEPT_REJECTIONS - len(report.skipped)]
        checkpoint.cursor = page.next
        yield Step("target", partial(save_checkpoint, checkpoint=checkpoint))
        if on_page is not None:
            on_page(checkpoint)
    # On a cluster, the store-wide marker says the whole store was migrated (global reads
    # may check it); one server's marker was set by the first write.
    yield Step("target", mark_migrated)
    if verify:
        report.comparisons = yield from compare(checkpoint.first_ms, checkpoint.last_ms)
    return report


def _note_times(checkpoint: MigrationCheckpoint, records: Iterable[dict[str, Any]]) -> None:
    for record in records:
        at = record.get("at")
        if not isinstance(at, str) or record.get("kind") not in ("enrollment", "completion"):
            continue
        ms = parse_timestamp_ms(at)
        if ms is None:
            continue
        if checkpoint.first_ms is None or ms < checkpoint.first_ms:
            checkpoint.first_ms = ms
        if checkpoint.last_ms is None or ms > checkpoint.last_ms:
            checkpoint.last_ms = ms


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, Exception) or isinstance(right, Exception):
        return type(left) is type(right) and str(left) == str(right)
    return bool(left == right)


def _describe(value: Any) -> str:
    if isinstance(value, Exception):
        return f"{type(value).__name__}: {value}"
    if hasattr(value, "model_dump_json"):
        return str(value.model_dump_json())[:200]
    if isinstance(value, list):
        return json.dumps([_plain(v) for v in value])[:200]
    return repr(value)[:200]


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _tally(row: Comparison, label: str, left: Any, right: Any) -> None:
    row.compared += 1
    if isinstance(left, NotIndexedError):
        # The source holds the older system's data without derived keys: this answer cannot
        # be read there until `reindex` (the target has them: the copy built them).
        row.not_comparable += 1
        row.note = "source not reindexed: run reindex on the source to compare these"
        return
    if _same(left, right):
        row.equal += 1
    elif not row.example:
        row.example = f"{label}: source {_describe(left)} / target {_describe(right)}"


def _course_answers(course_id: str) -> list[tuple[str, Callable[[Context], Op[Any]]]]:
    return [
        (name, partial(read, course_id=course_id))
        for name, read in (
            ("course detailed analytics", courses.get_course_detailed_analytics),
            ("module drop-off rates", analytics.get_course_module_dropoff_rates),
            ("module funnel", analytics.get_course_module_funnel),
            ("enrolment counts", enrollments.get_course_enrollment_count),
            ("completion counts", enrollments.get_course_completion_count),
        )
    ]


def compare(first_ms: int | None, last_ms: int | None) -> Generator[Step, Any, list[Comparison]]:
    """Read every answer on both stores and compare (see the module's docstring)."""
    rows: dict[str, Comparison] = {}

    def row(name: str) -> Comparison:
        found = rows.get(name)
        if found is None:
            found = rows[name] = Comparison(answer=name)
        return found

    # Per course, in chunks: one round trip per step of a chunk's reads, on each store.
    ids: set[str] = yield Step("source", course_ids)
    ids |= yield Step("target", course_ids)
    ordered = sorted(ids)
    for start in range(0, len(ordered), COMPARE_CHUNK):
        chunk = ordered[start : start + COMPARE_CHUNK]
        pairs = [(c, name, make) for c in chunk for name, make in _course_answers(c)]
        for name, _ in _course_answers(""):
            row(name)

        def reads(ctx: Context, pairs: Any = pairs) -> Op[list[Any]]:
            return _answers([make(ctx) for _, _, make in pairs])

        left = yield Step("source", reads)
        right = yield Step("target", reads)
        for (course_id, name, _), a, b in zip(pairs, left, right, strict=True):
            _tally(row(name), f"course {course_id}", a, b)
    # Every learner's progress and every certificate, streamed from the source's export.
    yield from _compare_streamed(row("learner progress"), "progress")
    yield from _compare_streamed(row("certificates by id"), "certifications")
    # Global figures: sums over every course and bucket.
    globals_: list[tuple[str, Callable[[Context], Op[Any]]]] = [
        ("overview", courses.get_training_overview_metrics),
        ("average completion", courses.calculate_average_completion),
        ("credential stats", certifications.get_credential_stats),
        ("credential claim analytics", credentials.get_credential_claim_analytics),
        ("course catalog", catalog.get_all_training_courses),
    ]
    for label, op in globals_:
        yield from _compare_global(row(label), op)
    for label, series in (
        ("daily enrolments", timeseries.get_daily_enrollment_counts),
        ("daily completions", timeseries.get_daily_completion_counts),
    ):
        if first_ms is None or last_ms is None:
            continue
        for start_day, end_day in _windows(first_ms, last_ms):

            def read(
                ctx: Context, s: str = start_day, e: str = end_day, f: Any = series
            ) -> Op[Any]:
                return f(ctx, s, e)  # type: ignore[no-any-return]

            yield from _compare_global(row(label), read, f"{start_day}..{end_day}")
    return list(rows.values())


def _windows(first_ms: int, last_ms: int, days: int = 366) -> list[tuple[str, str]]:
    """The event range as date windows short enough for every facade's range limit (UTC days,
    widened by a day each side: a store's zone may put an event on the day before or after)."""
    first = date.fromisoformat(day_bucket(from_epoch_ms(first_ms), _UTC)) - timedelta(days=1)
    last = date.fromisoformat(day_bucket(from_epoch_ms(last_ms), _UTC)) + timedelta(days=1)
    windows = []
    while first <= last:
        end = min(first + timedelta(days=days - 1), last)
        windows.append((first.isoformat(), end.isoformat()))
        first = end + timedelta(days=1)
    return windows


def _compare_global(
    row: Comparison, op: Callable[[Context], Op[Any]], label: str = ""
) -> Generator[Step, Any, None]:
    left = yield Step("source", lambda ctx: _settled(op(ctx)))
    right = yield Step("target", lambda ctx: _settled(op(ctx)))
    _tally(row, label or row.answer, left, right)


def _compare_streamed(row: Comparison, section: str) -> Generator[Step, Any, None]:
    """Answers per learner-course progress or per certificate, walking the source's export
    section page by page (constant memory), each page's answers read on both stores."""
    cursor: ExportCursor | None = ExportCursor.model_validate({"section": section})
    while cursor is not None and cursor.section == section:
        at = cursor
        page = yield Step("source", partial(export_page, cursor=at, count=DEFAULT_PAGE_SIZE))
        makers: list[tuple[str, Callable[[Context], Op[Any]]]] = []
        for record in page.records:
            if section == "progress":
                progress = record["progress"]
                user, course = progress["userId"], progress["courseId"]
                read: Callable[[Context], Op[Any]] = partial(
                    enrollments.get_user_course_progress_data, user_id=user, course_id=course
                )
                makers.append((f"learner {user} in {course}", read))
            else:
                cert_id = record["certification"]["id"]
                read = partial(certifications.get_training_certification, cert_id=cert_id)
                makers.append((f"certificate {cert_id}", read))
        if makers:

            def reads(ctx: Context, makers: Any = makers) -> Op[list[Any]]:
                return _answers([make(ctx) for _, make in makers])

            left = yield Step("source", reads)
            right = yield Step("target", reads)
            for (label, _), a, b in zip(makers, left, right, strict=True):
                _tally(row, label, a, b)
        cursor = page.next


# --- drivers ------------------------------------------------------------------------------------


def check_not_same(source: frozenset[str], target: frozenset[str], same_place: bool) -> None:
    """Refuse a migration of a store onto itself (the same server or cluster, and the same
    database and prefix): it would read what it writes."""
    if source & target and same_place:
        raise MigrationError(
            "source and target are the same store (same server or cluster, database and "
            "prefix): migrate copies between two stores"
        )


def run_migration(
    source: TrainingAnalytics, target: TrainingAnalytics, steps: Generator[Step, Any, T]
) -> T:
    """Drive ``steps`` (:func:`migration`, or :func:`compare` alone) on two sync facades."""
    reply: Any = None
    while True:
        try:
            step = steps.send(reply)
        except StopIteration as done:
            result: T = done.value
            return result
        facade = source if step.side == "source" else target
        reply = facade._bind(step.op)()


async def arun_migration(
    source: AsyncTrainingAnalytics, target: AsyncTrainingAnalytics, steps: Generator[Step, Any, T]
) -> T:
    """Drive ``steps`` on two asyncio facades."""
    reply: Any = None
    while True:
        try:
            step = steps.send(reply)
        except StopIteration as done:
            result: T = done.value
            return result
        facade = source if step.side == "source" else target
        reply = await facade._bind(step.op)()
