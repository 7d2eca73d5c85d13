"""Import and export as sans-I/O operations: records in, records out, a page per call.

A *record* is the JSON form of one line of an import or export file (``docs/formats.md``): an
event of ``record_many`` with its ``kind`` (camelCase or snake_case field names), or a course
(``{"kind": "course", "course": {...}}``), which import creates or replaces.

``import_records`` applies records in order and reports one outcome per record (courses
included), through ``record_each`` for the events. ``export_page`` walks the store one page at a
time (a SCAN, SSCAN, ZSCAN or ZRANGEBYSCORE page, then one pipeline reading that page's hashes)
and returns the records that rebuild its analytics, with the cursor of the next page: the caller
loops, holding one page at a time, so an export needs constant memory whatever the store's size.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from . import zone
from ._canonical import CanonicalEvent, CanonicalProgress
from ._codec import certification_from_hash, coerce, course_from_hash, progress_from_hash
from ._context import Context
from ._protocol import Await, Batch, Op, Submit, cmd, pipeline, single
from ._time import from_epoch_ms, to_iso
from ._writes import EventBatch, StreamSequence, outcomes, register_courses, request, settled
from .catalog import put_training_course
from .errors import (
    ConflictError,
    InvalidIdError,
    InvalidInputError,
    StoreError,
    TrainingAnalyticsError,
)
from .ingest import DEFAULT_BATCH_SIZE, check_batch_arguments, encode, forget_sequence
from .keys import check_id, glob_escape
from .outcomes import OutcomeTally, apply_each
from .scanning import scan_page
from .types import (
    CertificationIssuedEvent,
    CertificationStatusEvent,
    CompletionEvent,
    EnrollmentEvent,
    EventOutcomes,
    ModuleCompletionEvent,
    ModuleStartEvent,
    ProgressEvent,
    SeedModel,
    TrainingCourse,
)

COURSE_KIND = "course"

#: What one export page asks the server for (SCAN's COUNT, the LIMIT of a series page).
DEFAULT_PAGE_SIZE = 500
#: Module sets, and a cluster's certificate buckets, read side by side in one export page.
KEYS_PER_PAGE = 64
BUCKETS_PER_PAGE = 64

Section = Literal[
    "courses",
    "enrollments",
    "completions",
    "module_starts",
    "module_completions",
    "progress",
    "certifications",
]
#: Export order. Enrolments come before completions (a completion enrols a learner not enrolled
#: yet, at the completion's time: the enrolment's own time must be applied first), and in time
#: order (the first enrolment of a learner in a course is the one the day counts keep).
SECTIONS: tuple[Section, ...] = (
    "courses",
    "enrollments",
    "completions",
    "module_starts",
    "module_completions",
    "progress",
    "certifications",
)


class CourseRecord(SeedModel):
    """A course line of an import or export file: import creates it or replaces it."""

    kind: Literal["course"] = "course"
    course: TrainingCourse


# --- import ------------------------------------------------------------------------------------


def _is_course(record: Any) -> bool:
    if isinstance(record, CourseRecord):
        return True
    return isinstance(record, Mapping) and record.get("kind") == COURSE_KIND


def _put_course(ctx: Context, record: Any) -> Op[bool | TrainingAnalyticsError]:
    """Create or replace a course record's course: whether it changed the store, or the error
    that refused this record (a malformed course, one that kept changing under the write, or a
    key of another type in its place). A store that cannot be reached still raises."""
    try:
        if isinstance(record, CourseRecord):
            course: Any = record.course
        else:
            if "course" not in record:
                raise InvalidInputError("a course record needs its 'course' object")
            course = record["course"]
            if not isinstance(course, Mapping | TrainingCourse):
                raise InvalidInputError("a course record's 'course' must be an object")
        model: TrainingCourse = coerce(TrainingCourse, course, "course")
        try:
            json.dumps(model.model_dump(mode="json"), ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            # A lone surrogate (JSON's \\ud800 escape): the client would fail while sending.
            raise InvalidInputError(f"text that is not valid Unicode ({exc.reason})") from exc
        changed: bool = yield from put_training_course(ctx, model)
    except (InvalidInputError, ConflictError, StoreError) as exc:
        return exc
    return changed


def import_records(
    ctx: Context, records: Sequence[Any], *, batch_size: int = DEFAULT_BATCH_SIZE
) -> Op[EventOutcomes]:
    """Apply import records in order; one outcome per record, as ``record_each`` reports them.

    Events go through ``record_each``'s path (a run of consecutive events at a time, batch by
    batch); a course record creates the course or replaces it with exactly the record's
    fields, and is ``unchanged`` when the stored course already has them. A malformed record
    is rejected with its index; the others are applied.
    """
    check_batch_arguments(records, batch_size)
    if not isinstance(records, Sequence):
        raise InvalidInputError(f"records must be a sequence, not {type(records).__name__}")
    # Before any course is written: events in another zone than the store's would be refused
    # after the courses before them (TimeZoneMismatchError refuses the whole call).
    yield from zone.check_before_write(ctx)
    tally = OutcomeTally()
    start = 0
    while start < len(records):
        end = start
        while end < len(records) and not _is_course(records[end]):
            end += 1
        if end > start:
            yield from apply_each(ctx, records[start:end], tally, batch_size=batch_size)
        if end < len(records):
            outcome = yield from _put_course(ctx, records[end])
            if isinstance(outcome, bool):
                tally.done(outcome)
            else:
                tally.reject(outcome)
            end += 1
        start = end
    return tally.result()


# --- streamed import: numbered records in, counts and numbered rejections out ---------------


@dataclass(slots=True)
class ImportTally:
    """What ``import_lines`` did so far, filled in as batches settle: constant size, whatever
    the number of records (rejections are handed to ``on_rejected`` and not kept)."""

    applied: int = 0
    unchanged: int = 0
    rejected: int = 0
    settled: int = 0
    """Every record numbered up to this one has its outcome (0 before the first): after an
    interruption, records up to it were applied (or refused), later ones may be in part."""
    on_rejected: Callable[[int, str, str], None] | None = None
    """Called with (record number, error class name, message), in number order."""

    @property
    def records(self) -> int:
        return self.applied + self.unchanged + self.rejected


_EVENT_MODELS: frozenset[type] = frozenset(
    {
        EnrollmentEvent,
        CompletionEvent,
        ModuleStartEvent,
        ModuleCompletionEvent,
        ProgressEvent,
        CertificationIssuedEvent,
        CertificationStatusEvent,
        CanonicalProgress,
        CanonicalEvent,
    }
)


class _Run:
    """A batch being filled or in flight: its events, their numbers, and the records refused
    before it was sent (reported with its outcomes, so rejections come in number order)."""

    __slots__ = ("events", "last", "records", "refused", "tags", "ticket")

    def __init__(self, ctx: Context) -> None:
        self.events = EventBatch(ctx)
        self.records: list[Any] = []
        self.tags: list[int] = []
        self.refused: list[tuple[int, str, str]] = []
        self.last = 0
        self.ticket: Any = None

    def refuse(self, tag: int, error: Exception) -> None:
        self.refused.append((tag, type(error).__name__, str(error)))
        self.last = max(self.last, tag)

    def settle(self, tally: ImportTally, replies: list[Any]) -> None:
        if len(replies) != len(self.tags):
            raise StoreError(f"the server replied {len(replies)} outcomes for {len(self.tags)}")
        applied, unchanged = replies.count(1), replies.count(0)
        if applied + unchanged == len(replies) and not self.refused:  # the usual batch
            tally.applied += applied
            tally.unchanged += unchanged
            tally.settled = self.last
            return
        rejections = self.refused
        for tag, outcome in zip(self.tags, outcomes(replies), strict=True):
            if outcome is True:
                tally.applied += 1
            elif outcome is False:
                tally.unchanged += 1
            else:
                rejections.append((tag, type(outcome).__name__, str(outcome)))
        rejections.sort(key=lambda rejection: rejection[0])
        tally.rejected += len(rejections)
        if tally.on_rejected is not None:
            for rejection in rejections:
                tally.on_rejected(*rejection)
        tally.settled = self.last


def _request(ctx: Context, run: _Run, stream: StreamSequence) -> Batch | None:
    """The round trip for the next batch of ``stream`` (it runs only after the batch before
    it, see ``lua/apply.lua``), or None when no event of it can be sent. An event whose text
    cannot be sent (a lone surrogate, which JSON's escapes let through) is refused on its own,
    and the batch encoded again from the others (with the same place in the stream: a place
    is taken only when its batch is sent)."""
    run.events.in_sequence(stream)
    try:
        return request(run.events)
    except InvalidInputError:
        pass  # refused while encoding the whole call: find the events at fault
    kept = EventBatch(ctx)
    records, tags = run.records, run.tags
    run.records, run.tags = [], []
    for record, tag in zip(records, tags, strict=True):
        alone = EventBatch(ctx)
        alone.bulk = True
        encode(alone, record)
        try:
            request(alone)
        except InvalidInputError as exc:
            run.refuse(tag, exc)
            continue
        encode(kept, record)
        run.records.append(record)
        run.tags.append(tag)
    if not run.tags:
        return None
    run.events = kept
    kept.in_sequence(stream)
    return request(kept)


def import_lines(
    ctx: Context,
    records: Iterable[tuple[int, Any]],
    tally: ImportTally,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Op[ImportTally]:
    """Apply numbered import records in order, as a stream: constant memory, however many.

    Each item is (number, record): the number (a file's line number) names the record in
    rejections and in ``tally.settled``, and must increase; the record is what
    ``import_records`` takes (an event or a course, a model or its dict form), or an
    ``InvalidInputError`` for a record refused before this (a line that is not JSON), reported
    as rejected in its place. ``records`` is read lazily: the next batch is read and encoded
    while the server applies the one before (one batch in flight, kept in order by a sequence
    as ``record_many(stream=True)`` does); a course record waits for the events before it.
    Outcomes go into ``tally`` as batches settle (it is returned too). Errors of the store
    raise: ``tally`` says up to which record everything was applied.
    """
    check_batch_arguments(records, batch_size)
    yield from zone.check_before_write(ctx)
    applied_before = tally.applied
    stream = StreamSequence(ctx.keys, uuid.uuid4().hex)
    numbered = 0
    in_flight: deque[_Run] = deque()
    current = _Run(ctx)

    def send(run: _Run) -> Generator[Any, Any, None]:
        nonlocal numbered
        if not run.tags and not run.refused:
            return
        if run.tags:
            run.last = max(run.last, run.tags[-1])
            batch = _request(ctx, run, stream)
            if batch is not None:
                numbered += 1
                stream.advance(run.events)
                yield from register_courses(run.events)
                run.ticket = yield Submit(batch)
        in_flight.append(run)

    def collect() -> Generator[Any, Any, None]:
        run = in_flight.popleft()
        if run.ticket is None:
            run.settle(tally, [])
        else:
            replies = yield Await(run.ticket)
            run.settle(tally, (yield from settled(run.events, replies)))
        if tally.applied > applied_before:
            # Once, on the first write that changed the store (not only at the end: an import
            # stopped midway has written its day buckets in this zone too).
            yield from zone.remember_after_write(ctx)

    failure: list[BaseException] = []

    def reading() -> Iterator[tuple[int, Any]]:
        try:
            yield from records
        except GeneratorExit:
            raise
        except BaseException as exc:  # noqa: BLE001 - raised again below, once settled
            # The input failed or was interrupted (Ctrl-C while waiting for a pipe): what was
            # sent is settled first, so that the tally says how far the import got.
            failure.append(exc)

    events, kept, tags = current.events, current.records, current.tags
    for tag, record in reading():
        if type(record) not in _EVENT_MODELS:  # the usual record (a parsed line) skips these
            if isinstance(record, InvalidInputError):
                current.refuse(tag, record)
                continue
            if _is_course(record):
                # The records before it are applied first, then the course, in file order.
                yield from send(current)
                current = _Run(ctx)
                events, kept, tags = current.events, current.records, current.tags
                while in_flight:
                    yield from collect()
                outcome = yield from _put_course(ctx, record)
                if isinstance(outcome, bool):
                    if outcome:
                        tally.applied += 1
                    else:
                        tally.unchanged += 1
                else:
                    tally.rejected += 1
                    if tally.on_rejected is not None:
                        tally.on_rejected(tag, type(outcome).__name__, str(outcome))
                tally.settled = tag
                continue
        try:
            # encode adds the event only once it is valid: a refusal leaves the batch as it was.
            encode(events, record)
        except InvalidInputError as exc:
            current.refuse(tag, exc)
            continue
        kept.append(record)
        tags.append(tag)
        if len(tags) >= batch_size:
            yield from send(current)
            current = _Run(ctx)
            events, kept, tags = current.events, current.records, current.tags
            if len(in_flight) > 1:
                yield from collect()
    if failure:
        while in_flight:
            yield from collect()
        raise failure[0]
    yield from send(current)
    while in_flight:
        yield from collect()
    if numbered:
        yield from forget_sequence(stream)
    return tally


# --- export ------------------------------------------------------------------------------------


class ExportCursor(SeedModel):
    """Where an export stands: the section, and the server's cursor within it.

    Plain data (JSON-serialisable), so an export can also be resumed across requests.
    """

    section: Section = "courses"
    scan: str = "0"
    """The section's SCAN/SSCAN/ZSCAN cursor; for the two series, the score (epoch ms) that the
    next page starts at."""
    skip: int = 0
    """Series only: members at score ``scan`` already exported."""
    keys: list[str] = Field(default_factory=list)
    """Module sections: set keys found by the SCAN, not exported yet (the first one in part)."""
    member_scan: str = "0"
    """Module sections: the SSCAN cursor within ``keys[0]``."""
    scan_done: bool = False
    """Module sections: the SCAN of keys is complete (only ``keys`` remain)."""
    nodes: list[str] | None = None
    """Cluster, SCAN sections: the primaries still to scan, ``scan`` the first one's cursor
    (None: not asked yet)."""
    courses: list[str] = Field(default_factory=list)
    """Cluster, series sections: course ids from the registry not exported yet (the first one
    in part, from ``scan``/``skip``)."""
    registry_scan: str = "0"
    """Cluster, series sections: the SSCAN cursor of the course registry."""
    registry_done: bool = False
    bucket: int = 0
    """Cluster, certifications: the certificate bucket being read (``scan`` is its SSCAN)."""


class ExportPage(SeedModel):
    """One page of an export: records in file order, and where the next page starts."""

    records: list[dict[str, Any]] = Field(default_factory=list)
    next: ExportCursor | None = None
    """None when the export is complete."""
    skipped: list[str] = Field(default_factory=list)
    """Keys or members that cannot be exported (ids this library cannot address, malformed
    records), each with the reason."""


def _head(full: str, tail: str) -> str:
    """A key's fixed start (``training:progress:`` of ``training:progress:x:y``, tail ``x:y``)."""
    return full[: -len(tail)]


def _after(cursor: ExportCursor) -> ExportCursor | None:
    """The first cursor of the section after ``cursor``'s, or None after the last one."""
    position = SECTIONS.index(cursor.section) + 1
    if position == len(SECTIONS):
        return None
    return ExportCursor(section=SECTIONS[position])


def _resume(cursor: ExportCursor, scan: Any) -> ExportCursor | None:
    """After a SCAN-family page: the same section at the server's cursor, or the next section."""
    scan = str(scan)  # redis-py parses some cursors to int
    return _after(cursor) if scan == "0" else cursor.model_copy(update={"scan": scan})


def _pairs(entries: list[Any]) -> list[tuple[str, str]]:
    """(member, score) pairs of a WITHSCORES or ZSCAN reply, RESP2 (flat) or RESP3 (pairs)."""
    if entries and isinstance(entries[0], list | tuple):
        return [(str(pair[0]), str(pair[1])) for pair in entries]
    return [(str(m), str(s)) for m, s in zip(entries[0::2], entries[1::2], strict=True)]


def _score_ms(score: str) -> int:
    return int(float(score))


def _js_numbers(value: Any) -> Any:
    """Whole numbers as JavaScript prints them (``82``, not ``82.0``), as the store holds them."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    if isinstance(value, dict):
        return {k: _js_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_js_numbers(v) for v in value]
    return value


def _dump(model: Any) -> Any:
    return _js_numbers(model.model_dump(mode="json", exclude_none=True))


def _ids(*values: str) -> bool:
    try:
        for value in values:
            check_id(value)
    except InvalidIdError:
        return False
    return True


def _courses_page(ctx: Context, cursor: ExportCursor, count: int) -> Op[ExportPage]:
    k = ctx.keys
    scan, entries = yield from single(
        "ZSCAN", k.all_training_courses(), cursor.scan, "COUNT", count
    )
    ids = [member for member, _ in _pairs(entries)]
    replies = yield from pipeline([cmd("HGETALL", k.training_course(i)) for i in ids])
    page = ExportPage()
    for course_id, data in zip(ids, replies, strict=True):
        try:
            course = course_from_hash(data)
        except StoreError as exc:
            page.skipped.append(f"{k.training_course(course_id)}: {exc}")
            continue
        if course is None:
            page.skipped.append(f"{k.training_course(course_id)}: listed but absent")
            continue
        page.records.append({"kind": COURSE_KIND, "course": _dump(course)})
    page.next = _resume(cursor, scan)
    return page


def _series_page(ctx: Context, cursor: ExportCursor, count: int) -> Op[ExportPage]:
    """A page of the enrolment or completion series in time order, resumed by (score, skip)
    rather than by rank, so members added meanwhile do not shift it. On a cluster the series is
    kept per course: course by course (from the course registry), each in time order."""
    k = ctx.keys
    enrollments = cursor.section == "enrollments"
    kind = "enrollment" if enrollments else "completion"
    if k.cluster:
        if not cursor.courses:
            return (yield from _registry_page(ctx, cursor, count))
        course = check_id(cursor.courses[0], "course id")
        key = (
            k.course_enrollment_timeseries(course)
            if enrollments
            else k.course_completion_timeseries(course)
        )
        after: ExportCursor | None = cursor.model_copy(
            update={"courses": cursor.courses[1:], "scan": "0", "skip": 0}
        )
    else:
        key = k.enrollment_timeseries() if enrollments else k.completion_timeseries()
        after = _after(cursor)
    low = "-inf" if cursor.scan == "0" and not cursor.skip else cursor.scan
    entries = yield from single(
        "ZRANGEBYSCORE", key, low, "+inf", "WITHSCORES", "LIMIT", cursor.skip, count
    )
    pairs = _pairs(entries)
    page = ExportPage()
    for member, score in pairs:
        _, user_id, course_id = [*member.split(":", 2), "", ""][:3]
        if not _ids(user_id, course_id):
            page.skipped.append(f"{key} member {member!r}: not a learner and a course")
            continue
        at = to_iso(from_epoch_ms(_score_ms(score)))
        page.records.append({"kind": kind, "userId": user_id, "courseId": course_id, "at": at})
    if len(pairs) < count:
        page.next = after
        return page
    last = pairs[-1][1]
    same = sum(1 for _, score in pairs if score == last)
    skip = cursor.skip + same if same == len(pairs) and low == last else same
    page.next = cursor.model_copy(update={"scan": last, "skip": skip})
    return page


def _registry_page(ctx: Context, cursor: ExportCursor, count: int) -> Op[ExportPage]:
    """Cluster, series sections: the next page of course ids from the course registry (or the
    next section once it is read)."""
    page = ExportPage()
    if cursor.registry_done:
        page.next = _after(cursor)
        return page
    scan, ids = yield from single(
        "SSCAN", ctx.keys.course_registry(), cursor.registry_scan, "COUNT", count
    )
    courses = []
    for course_id in sorted(set(ids)):
        if _ids(course_id):
            courses.append(course_id)
        else:
            page.skipped.append(f"course registry member {course_id!r}: not a course id")
    page.next = cursor.model_copy(
        update={
            "courses": courses,
            "registry_scan": str(scan),
            "registry_done": str(scan) == "0",
            "scan": "0",
            "skip": 0,
        }
    )
    return page


def _scan_step(
    ctx: Context, cursor: ExportCursor, pattern: str, count: int, kind: str
) -> Op[tuple[list[str], dict[str, Any], bool]]:
    """One SCAN page of the store (every primary of a cluster in turn): the keys, the cursor's
    update, and whether the scan is complete."""
    if not ctx.keys.cluster:
        scan, keys = yield from single(
            "SCAN", cursor.scan, "MATCH", pattern, "COUNT", count, "TYPE", kind
        )
        return keys, {"scan": str(scan)}, str(scan) == "0"
    keys, nodes, scan = yield from scan_page(
        ctx, cursor.nodes, cursor.scan, "MATCH", pattern, "COUNT", count, "TYPE", kind
    )
    return keys, {"scan": scan, "nodes": nodes}, not nodes


def _split_key(ctx: Context, key: str, head: str) -> tuple[str, str]:
    """The two ids after ``head`` in a progress (user, course) or module (course, module) key;
    in the cluster layout the course is the ``{...}`` part."""
    first, _, second = key[len(head) :].partition(":")
    if ctx.keys.cluster:
        if first.startswith("{") and first.endswith("}"):
            first = first[1:-1]
        elif second.startswith("{") and second.endswith("}"):
            second = second[1:-1]
        else:
            return "", ""
    return first, second


def _key_head(ctx: Context, sample: str) -> str:
    """The fixed start of keys like ``sample`` (made with the ids "x" and "y")."""
    if not ctx.keys.cluster:
        return _head(sample, "x:y")
    return _head(sample, "x:{y}" if sample.endswith("}") else "{x}:y")


def _module_page(ctx: Context, cursor: ExportCursor, count: int) -> Op[ExportPage]:
    k = ctx.keys
    starts = cursor.section == "module_starts"
    kind = "module_start" if starts else "module_completion"
    sample = k.module_enrollments("x", "y") if starts else k.module_completions("x", "y")
    head = _key_head(ctx, sample)
    page = ExportPage()
    if not cursor.keys:
        if cursor.scan_done:
            page.next = _after(cursor)
            return page
        keys, update, done = yield from _scan_step(
            ctx, cursor, glob_escape(head) + "*", count, "set"
        )
        page.next = cursor.model_copy(
            update={**update, "keys": sorted(set(keys)), "scan_done": done}
        )
        return page
    # Several set keys per page, their SSCANs in one round trip: a module set is usually small,
    # and a page per key made the module sections most of an export's round trips. Keys are
    # consumed in order; the first one not read to its end keeps its SSCAN cursor, and the
    # replies of keys after it are read again on the next page.
    entries: list[tuple[str, str, str, str | None]] = []
    for found in cursor.keys[:KEYS_PER_PAGE]:
        if not found.startswith(head):
            raise InvalidInputError(f"export cursor names a key outside this export: {found!r}")
        course_id, module_id = _split_key(ctx, found, head)
        if not _ids(course_id, module_id):
            entries.append((found, course_id, module_id, None))
            continue
        # The key is built again from its ids: a cursor that came back from a client reads no
        # other key than one this section would.
        key = (
            k.module_enrollments(course_id, module_id)
            if starts
            else k.module_completions(course_id, module_id)
        )
        entries.append((found, course_id, module_id, key))
    replies = yield from pipeline(
        [
            cmd("SSCAN", key, cursor.member_scan if i == 0 else "0", "COUNT", count)
            for i, (_, _, _, key) in enumerate(entries)
            if key is not None
        ]
    )
    answers = iter(replies)
    consumed = 0
    for listed, course_id, module_id, read in entries:
        if read is None:
            page.skipped.append(f"{listed}: not a course and a module this library can address")
            consumed += 1
            continue
        scan, members = next(answers)
        for user_id in members:
            if not _ids(user_id):
                page.skipped.append(f"{read} member {user_id!r}: not a learner id")
                continue
            page.records.append(
                {"kind": kind, "userId": user_id, "courseId": course_id, "moduleId": module_id}
            )
        if str(scan) != "0":
            page.next = cursor.model_copy(
                update={"keys": cursor.keys[consumed:], "member_scan": str(scan)}
            )
            return page
        consumed += 1
        if len(page.records) >= count:
            break
    page.next = cursor.model_copy(update={"keys": cursor.keys[consumed:], "member_scan": "0"})
    return page


def _progress_page(ctx: Context, cursor: ExportCursor, count: int) -> Op[ExportPage]:
    k = ctx.keys
    head = _key_head(ctx, k.user_course_progress("x", "y"))
    keys, update, done = yield from _scan_step(ctx, cursor, glob_escape(head) + "*", count, "hash")
    page = ExportPage()
    found: list[tuple[str, str, str]] = []
    for key in sorted(set(keys)):
        user_id, course_id = _split_key(ctx, key, head)
        if _ids(user_id, course_id):
            found.append((key, user_id, course_id))
        else:
            page.skipped.append(f"{key}: not a learner and a course this library can address")
    replies = yield from pipeline([cmd("HGETALL", key) for key, _, _ in found])
    for (_, user_id, course_id), data in zip(found, replies, strict=True):
        progress = progress_from_hash(user_id, course_id, data)
        if progress is not None:  # deleted since the SCAN
            page.records.append(
                {
                    "kind": "progress",
                    "progress": _dump(progress),
                }
            )
    page.next = _after(cursor) if done else cursor.model_copy(update=update)
    return page


def _certificate_ids(ctx: Context, cursor: ExportCursor, count: int) -> Op[tuple[list[str], Any]]:
    """The next ids of the certificates section and the next cursor (None: section done). One
    SSCAN of the store's set; on a cluster, of several buckets in one round trip (most hold a
    few ids), stopping at the first bucket not read to its end, which keeps its cursor."""
    k = ctx.keys
    if not k.cluster:
        scan, ids = yield from single(
            "SSCAN", k.all_training_certifications(), cursor.scan, "COUNT", count
        )
        return list(ids), _resume(cursor, scan)
    buckets = k.certification_buckets()
    chosen = range(cursor.bucket, min(cursor.bucket + BUCKETS_PER_PAGE, len(buckets)))
    if not chosen:
        return [], _after(cursor)
    replies = yield from pipeline(
        [
            cmd(
                "SSCAN",
                k.all_training_certifications(buckets[b]),
                cursor.scan if b == cursor.bucket else "0",
                "COUNT",
                count,
            )
            for b in chosen
        ]
    )
    found: list[str] = []
    for b, (scan, ids) in zip(chosen, replies, strict=True):
        found += ids
        if str(scan) != "0":
            return found, cursor.model_copy(update={"bucket": b, "scan": str(scan)})
        if len(found) >= count:
            return found, cursor.model_copy(update={"bucket": b + 1, "scan": "0"})
    return found, cursor.model_copy(update={"bucket": chosen[-1] + 1, "scan": "0"})


def _certifications_page(ctx: Context, cursor: ExportCursor, count: int) -> Op[ExportPage]:
    k = ctx.keys
    found, following = yield from _certificate_ids(ctx, cursor, count)
    ids = sorted(set(found))
    replies = yield from pipeline([cmd("HGETALL", k.training_certification(i)) for i in ids])
    page = ExportPage()
    for cert_id, data in zip(ids, replies, strict=True):
        try:
            record = certification_from_hash(data)
        except StoreError as exc:
            page.skipped.append(f"{k.training_certification(cert_id)}: {exc}")
            continue
        if record is None:
            page.skipped.append(f"{k.training_certification(cert_id)}: listed but absent")
            continue
        line: dict[str, Any] = {
            "kind": "certification_issued",
            "certification": _dump(record),
        }
        if record.status == "claimed" and not record.claimed_at:
            # Issuing a claimed record without a claim time stamps it with the event's time.
            # The issue time keeps the claim out of the average claim time, as it is here.
            line["at"] = record.issued_at
        page.records.append(line)
    page.next = following
    return page


def _check_cursor(cursor: ExportCursor) -> None:
    """A cursor is plain data a client may hand back: its numbers must be numbers."""
    series = cursor.section in ("enrollments", "completions")
    try:
        if series:
            if math.isnan(float(cursor.scan)):
                raise ValueError(cursor.scan)
        elif not cursor.scan.isdigit():
            raise ValueError(cursor.scan)
        if not cursor.registry_scan.isdigit() or cursor.bucket < 0:
            raise ValueError(cursor.registry_scan)
        if not cursor.member_scan.isdigit() or cursor.skip < 0:
            raise ValueError(cursor.member_scan)
    except ValueError as exc:
        raise InvalidInputError(f"not an export cursor: {cursor.model_dump_json()}") from exc


def export_page(
    ctx: Context,
    cursor: ExportCursor | Mapping[str, Any] | None = None,
    *,
    count: int = DEFAULT_PAGE_SIZE,
) -> Op[ExportPage]:
    """One page of the records that rebuild this store's analytics (``docs/formats.md``).

    Start with no cursor and pass each page's ``next`` until it is None. A page may hold no
    records (SCAN pages can be empty); each costs one or two round trips, and ``count`` bounds
    what the server returns per page (SCAN may return a little more).
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidInputError(f"count must be an integer >= 1; got {count!r}")
    position: ExportCursor = (
        ExportCursor() if cursor is None else coerce(ExportCursor, cursor, "cursor")
    )
    _check_cursor(position)
    match position.section:
        case "courses":
            return (yield from _courses_page(ctx, position, count))
        case "enrollments" | "completions":
            return (yield from _series_page(ctx, position, count))
        case "module_starts" | "module_completions":
            return (yield from _module_page(ctx, position, count))
        case "progress":
            return (yield from _progress_page(ctx, position, count))
        case "certifications":
            return (yield from _certifications_page(ctx, position, count))
