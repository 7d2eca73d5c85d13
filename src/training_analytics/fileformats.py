"""Import and export files: JSON Lines and CSV, one record a line (``docs/formats.md``).

Nothing here talks to the store: reading turns a byte stream into numbered records (or the
reason a line is refused), chunk after chunk with bounded memory; the caller applies each chunk
(``import_records``) and hands the outcomes back to be matched with line numbers. The CLI drives
it with the sync facade; anything else (the HTTP service, a test) can drive the same pieces.

Memory stays bounded whatever the file's size: a line longer than ``max_line_bytes`` is skipped
without being held (reported as rejected), and a chunk holds at most ``chunk_lines`` lines and
about ``chunk_bytes`` bytes.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import IO, Annotated, Any, Literal, TypeAlias

from pydantic import Field, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from ._canonical import line_event
from .errors import InvalidInputError
from .transfer import CourseRecord, ExportCursor, ExportPage, ImportTally
from .types import (
    CertificationIssuedEvent,
    CertificationStatusEvent,
    CompletionEvent,
    EnrollmentEvent,
    EventOutcomes,
    ModuleCompletionEvent,
    ModuleStartEvent,
    ProgressEvent,
)

Format = Literal["jsonl", "csv"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv")

MAX_LINE_BYTES = 1 << 20
"""A line longer than this (1 MiB) is rejected without being read into memory."""
CHUNK_LINES = 10_000
CHUNK_BYTES = 8 << 20

#: CSV columns, in the order export would write them. ``kind`` is required; the others are the
#: events' flat fields, and the three nested ones hold a JSON object.
CSV_COLUMNS = (
    "kind",
    "at",
    "userId",
    "courseId",
    "moduleId",
    "certId",
    "newStatus",
    "claimedAt",
    "progress",
    "certification",
    "course",
)
CSV_JSON_COLUMNS = frozenset({"progress", "certification", "course"})

_EXTENSIONS: dict[str, Format] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_READ_BLOCK = 64 * 1024


def detect_format(name: str, explicit: str | None = None) -> Format:
    """The format given, else the file name's extension (``.jsonl``/``.ndjson``, ``.csv``)."""
    if explicit is not None:
        if explicit not in FORMATS:
            raise InvalidInputError(f"format must be jsonl, csv or xapi, got {explicit!r}")
        return explicit
    found = _EXTENSIONS.get(PurePath(name).suffix.lower())
    if found is None:
        raise InvalidInputError(
            f"cannot tell the format of {name!r} from its extension (.jsonl, .ndjson or .csv); "
            "give --format jsonl or --format csv"
        )
    return found


# --- reading -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Line:
    """One non-blank line of an import file: its record, or why it is refused."""

    number: int
    """1-based line number in the file."""
    size: int
    """Bytes, line ending included."""
    record: dict[str, Any] | None = None
    error: InvalidInputError | None = None


class LineReader:
    """The lines of a binary stream, counted in bytes, each at most ``max_line_bytes`` long.

    A longer line is yielded as None and skipped block by block, never held whole.
    """

    def __init__(self, stream: IO[bytes], max_line_bytes: int = MAX_LINE_BYTES) -> None:
        if max_line_bytes < 1:
            raise InvalidInputError("max_line_bytes must be at least 1")
        self.stream = stream
        self.max_line_bytes = max_line_bytes
        self.bytes_read = 0
        self.number = 0

    def __iter__(self) -> Iterator[tuple[int, int, bytes | None]]:
        """(line number, size in bytes, the line without its ending or None if too long)."""
        for block in self.blocks():
            yield from block

    def blocks(self) -> Iterator[list[tuple[int, int, bytes | None]]]:
        """The lines as ``__iter__`` gives them, a list per block read (``bytes_read`` counts
        them all once the list is out): a bulk reader loops over lists, not through a
        generator per line."""
        # Blocks split in C, rather than a readline call per line (a third of the time to
        # read a line); read1 returns what a pipe has so far instead of waiting for a block.
        read = getattr(self.stream, "read1", None) or self.stream.read
        limit = self.max_line_bytes
        pending = b""  # the start of a line whose end is not read yet (at most limit bytes)
        skipped = -1  # bytes of a too-long line read so far, or -1
        number, total = self.number, self.bytes_read
        while True:
            block = read(_READ_BLOCK)
            if not block:
                break
            parts = block.split(b"\n")
            tail = parts.pop()
            out: list[tuple[int, int, bytes | None]] = []
            for part in parts:
                number += 1
                if skipped >= 0:
                    out.append((number, skipped + len(part) + 1, None))
                    skipped = -1
                    continue
                line = pending + part if pending else part
                pending = b""
                out.append(
                    (number, len(line) + 1, line.rstrip(b"\r") if len(line) <= limit else None)
                )
            if skipped >= 0:
                skipped += len(tail)
            elif len(pending) + len(tail) > limit:
                # Too long: skip to the end of the line without keeping it.
                skipped, pending = len(pending) + len(tail), b""
            else:
                pending += tail
            total += len(block)
            if out:
                # Everything read but the line not finished yet.
                self.number = number
                self.bytes_read = total - (skipped if skipped >= 0 else len(pending))
                yield out
        if skipped >= 0 or pending:
            number += 1
            self.number = number
            self.bytes_read = total
            size = skipped if skipped >= 0 else len(pending)
            yield [(number, size, None if skipped >= 0 else pending.rstrip(b"\r"))]


def _text(number: int, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return text.removeprefix("\ufeff") if number == 1 else text


def _too_long(limit: int) -> InvalidInputError:
    return InvalidInputError(f"line longer than {limit:,} bytes; not read")


def _jsonl(reader: LineReader) -> Iterator[Line]:
    for number, size, raw in reader:
        if raw is None:
            yield Line(number, size, error=_too_long(reader.max_line_bytes))
            continue
        try:
            text = _text(number, raw)
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"not JSON: {exc}") from exc
            if not isinstance(value, dict):
                raise InvalidInputError(f"a record is a JSON object, got {type(value).__name__}")
        except InvalidInputError as exc:
            yield Line(number, size, error=exc)
            continue
        yield Line(number, size, record=value)


def _csv_header(text: str) -> list[str]:
    names = next(csv.reader([text]), [])
    columns = [to_camel(name.strip()) for name in names]
    unknown = sorted(set(columns) - set(CSV_COLUMNS))
    if unknown:
        raise InvalidInputError(
            f"unknown CSV column(s) {', '.join(unknown)}; the columns are {', '.join(CSV_COLUMNS)}"
        )
    if "kind" not in columns:
        raise InvalidInputError("the CSV header has no 'kind' column")
    if len(set(columns)) != len(columns):
        raise InvalidInputError("a CSV column appears twice in the header")
    return columns


def _csv_record(columns: list[str], text: str) -> dict[str, Any]:
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise InvalidInputError(f"not a CSV row: {exc}") from exc
    cells = rows[0] if rows else []
    if len(cells) != len(columns):
        raise InvalidInputError(f"expected {len(columns)} CSV fields, got {len(cells)}")
    record: dict[str, Any] = {}
    for name, cell in zip(columns, cells, strict=True):
        if cell == "":
            continue  # an empty cell is an absent field
        if name in CSV_JSON_COLUMNS:
            try:
                record[name] = json.loads(cell)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"column {name} is not JSON: {exc}") from exc
        else:
            record[name] = cell
    return record


def _csv(reader: LineReader) -> Iterator[Line]:
    columns: list[str] | None = None
    for number, size, raw in reader:
        if raw is None:
            if columns is None:
                raise _too_long(reader.max_line_bytes)
            yield Line(number, size, error=_too_long(reader.max_line_bytes))
            continue
        try:
            text = _text(number, raw)
            if not text.strip():
                continue
            if columns is None:
                # The header: a file without a usable one cannot be read at all.
                columns = _csv_header(text)
                continue
            record = _csv_record(columns, text)
        except InvalidInputError as exc:
            if columns is None:
                raise InvalidInputError(f"line {number}: {exc}") from exc
            yield Line(number, size, error=exc)
            continue
        yield Line(number, size, record=record)


def read_lines(reader: LineReader, fmt: Format) -> Iterator[Line]:
    """Every non-blank line of the stream as a record or a refusal, in file order.

    CSV: InvalidInputError (before any record) when the header is missing or has unknown
    columns.
    """
    return _jsonl(reader) if fmt == "jsonl" else _csv(reader)


def chunks(
    lines: Iterable[Line], max_lines: int = CHUNK_LINES, max_bytes: int = CHUNK_BYTES
) -> Iterator[list[Line]]:
    """Consecutive lines, at most ``max_lines`` and about ``max_bytes`` per chunk."""
    if max_lines < 1:
        raise InvalidInputError("chunk size must be at least 1 line")
    chunk: list[Line] = []
    size = 0
    for line in lines:
        chunk.append(line)
        size += line.size
        if len(chunk) >= max_lines or size >= max_bytes:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


# --- reading many lines at once ----------------------------------------------------------------

#: An import line as read: (line number, its bytes without the line ending, or None when it is
#: longer than the limit).
RawLine: TypeAlias = tuple[int, bytes | None]
#: (line number, record): an event or course model, a record's dict form (a line only the
#: line-by-line reading accepts), or the InvalidInputError that refuses the line.
Numbered: TypeAlias = tuple[int, Any]

#: Lines read at a time (about one batch of the write path) and their bytes at most.
PARSE_LINES = 1000
PARSE_BYTES = 1 << 20

_BOM = "\ufeff".encode()

ImportRecord: TypeAlias = Annotated[
    EnrollmentEvent
    | CompletionEvent
    | ModuleStartEvent
    | ModuleCompletionEvent
    | ProgressEvent
    | CertificationIssuedEvent
    | CertificationStatusEvent
    | CourseRecord,
    Field(discriminator="kind"),
]
# A line parsed and validated in one call into pydantic-core (its JSON parser builds the model
# directly): about half the time of json.loads and a validation of the dict. Line by line, not
# a JSON array of many lines: a thousand models alive at once would cost more in garbage
# collection than the calls save (and the array would need proof that no line joins its
# neighbours).
_ONE = TypeAdapter(ImportRecord).validator
_VALIDATE = _ONE.validate_json


def _decoded(number: int, raw: bytes) -> Any:
    """A line read on its own, as ``read_lines`` reads it: the record's dict, the refusal, or
    None for a blank line."""
    try:
        text = _text(number, raw)
        if not text.strip():
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise InvalidInputError(f"a record is a JSON object, got {type(value).__name__}")
    except InvalidInputError as exc:
        return exc
    return value


def parse_line(number: int, raw: bytes | None, max_line_bytes: int = MAX_LINE_BYTES) -> Any:
    """One JSON Lines line's record, as ``parse_jsonl`` gives it; None for a blank line."""
    if raw is None:
        return _too_long(max_line_bytes)
    line = raw.removeprefix(_BOM) if number == 1 else raw
    canonical = line_event(line)
    if canonical is not None:  # an event in the canonical form: no models built
        return canonical
    try:
        return _VALIDATE(line)
    except ValidationError:
        return _decoded(number, raw)


def parse_jsonl(
    lines: Iterable[RawLine], max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[Numbered]:
    """The records of JSON Lines lines, blank lines left out, in order, one at a time.

    A valid record comes back as its model (a progress save already in the stored form as the
    ``CanonicalProgress`` the write path takes, without building models); any other line is
    read as ``read_lines`` reads it, so that it is refused with the same message (or, rarely,
    accepted as a dict that the write path refuses: ``json.loads`` takes lone surrogates,
    pydantic-core does not).
    """
    for number, raw in lines:
        record = parse_line(number, raw, max_line_bytes)
        if record is not None:
            yield number, record


def raw_chunks(
    reader: LineReader, max_lines: int = PARSE_LINES, max_bytes: int = PARSE_BYTES
) -> Iterator[list[RawLine]]:
    """The stream's lines, a list of at most ``max_lines`` lines (about ``max_bytes``) at a time."""
    chunk: list[RawLine] = []
    size = 0
    for number, length, raw in reader:
        chunk.append((number, raw))
        size += length
        if len(chunk) >= max_lines or size >= max_bytes:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def numbered_records(
    reader: LineReader,
    fmt: Format,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Numbered]:
    """Every non-blank line of the stream as (line number, record or refusal), in file order
    (``parse_line``; CSV line by line); ``on_progress`` gets the bytes read after each block
    (JSON Lines) or ``PARSE_LINES`` lines (CSV).

    CSV: InvalidInputError (before any record) when the header is missing or has unknown
    columns.
    """
    if fmt == "csv":
        for count, line in enumerate(_csv(reader), 1):
            yield line.number, line.error if line.error is not None else line.record
            if on_progress is not None and count % PARSE_LINES == 0:
                on_progress(reader.bytes_read)
    else:
        limit = reader.max_line_bytes
        for block in reader.blocks():
            # One generator between the file and the write path, a call per line.
            for number, _, raw in block:
                record = parse_line(number, raw, limit)
                if record is not None:
                    yield number, record
            if on_progress is not None:
                on_progress(reader.bytes_read)
    if on_progress is not None:
        on_progress(reader.bytes_read)


def import_file(
    stream: IO[bytes],
    fmt: Format,
    apply: Callable[[Iterable[Numbered], ImportTally], ImportTally],
    *,
    on_rejected: Callable[[RejectedLine], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    summary: ImportSummary | None = None,
) -> ImportSummary:
    """Read the stream and apply its records in order, as one stream of batches.

    ``apply`` is ``TrainingAnalytics.import_lines`` (or anything with its contract). Unlike
    ``import_stream`` the server never waits for a chunk to be read: the next batch is read,
    parsed and encoded while the server applies the one before. Rejected lines go to
    ``on_rejected`` in line order; errors of the store propagate, ``summary`` (filled in even
    then) saying up to which line everything was imported.
    """
    reader = LineReader(stream, max_line_bytes)
    summary = summary if summary is not None else ImportSummary()

    def rejected(line: int, error: str, message: str) -> None:
        if on_rejected is not None:
            on_rejected(RejectedLine(line, error, message))

    tally = ImportTally(on_rejected=rejected)
    try:
        apply(numbered_records(reader, fmt, on_progress), tally)
    finally:
        summary.lines = tally.records
        summary.applied, summary.unchanged = tally.applied, tally.unchanged
        summary.rejected, summary.last_line = tally.rejected, tally.settled
        summary.bytes_read = reader.bytes_read
    return summary


# --- the import loop ---------------------------------------------------------------------------


@dataclass(slots=True)
class RejectedLine:
    line: int
    error: str
    """The error class name (InvalidInputError, IllegalTransitionError, ...)."""
    message: str


@dataclass(slots=True)
class ImportSummary:
    lines: int = 0
    """Non-blank lines read (the header of a CSV file aside)."""
    applied: int = 0
    unchanged: int = 0
    rejected: int = 0
    bytes_read: int = 0
    last_line: int = 0
    """The last line of the last chunk applied in full: an interrupted import applied every
    line up to it (and maybe some of the chunk after)."""


def settle(chunk: list[Line], outcomes: EventOutcomes) -> Iterator[RejectedLine]:
    """The rejected lines of a chunk: those refused when read, and those the store refused.

    ``outcomes`` are ``import_records``' for the chunk's readable lines, in order.
    """
    readable = [line for line in chunk if line.error is None]
    rejected = {o.index: o for o in outcomes.results if o.status == "rejected"}
    position = 0
    for line in chunk:
        if line.error is not None:
            yield RejectedLine(line.number, type(line.error).__name__, str(line.error))
            continue
        outcome = rejected.get(position)
        if outcome is not None:
            yield RejectedLine(line.number, outcome.error or "", outcome.message or "")
        position += 1
    assert position == len(readable)


def import_stream(
    stream: IO[bytes],
    fmt: Format,
    apply: Callable[[list[dict[str, Any]]], EventOutcomes],
    *,
    on_rejected: Callable[[RejectedLine], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    chunk_lines: int = CHUNK_LINES,
    summary: ImportSummary | None = None,
) -> ImportSummary:
    """Read the stream chunk by chunk and ``apply`` each chunk's records, in order.

    ``apply`` is ``TrainingAnalytics.import_records`` (or anything with its contract: one
    outcome per record, in order). Rejected lines go to ``on_rejected`` as they are found;
    ``on_progress`` gets the bytes read so far after each chunk. Errors of the store (it
    cannot be reached) propagate: the chunks before were applied, and ``summary`` (when given,
    it is filled in as chunks complete) says up to which line.
    """
    reader = LineReader(stream, max_line_bytes)
    summary = summary if summary is not None else ImportSummary()
    for chunk in chunks(read_lines(reader, fmt), chunk_lines):
        records = [line.record for line in chunk if line.record is not None]
        outcomes = apply(records) if records else EventOutcomes()
        summary.lines += len(chunk)
        summary.applied += outcomes.applied
        summary.unchanged += outcomes.unchanged
        for rejection in settle(chunk, outcomes):
            summary.rejected += 1
            if on_rejected is not None:
                on_rejected(rejection)
        summary.bytes_read = reader.bytes_read
        summary.last_line = chunk[-1].number
        if on_progress is not None:
            on_progress(reader.bytes_read)
    summary.bytes_read = reader.bytes_read
    return summary


# --- export ------------------------------------------------------------------------------------


@dataclass(slots=True)
class ExportSummary:
    records: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def record_line(record: dict[str, Any]) -> str:
    """A record as one JSON Lines line (no spaces, UTF-8 kept, newline-terminated)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def export_stream(
    page: Callable[[ExportCursor | None], ExportPage],
    out: IO[str],
    *,
    on_skipped: Callable[[str], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Write every record of the export as JSON Lines, page after page.

    ``page`` is ``TrainingAnalytics.export_page``; one page is held at a time.
    """
    summary = ExportSummary()
    cursor: ExportCursor | None = None
    while True:
        current = page(cursor)
        out.writelines(record_line(record) for record in current.records)
        for record in current.records:
            kind = str(record.get("kind"))
            summary.by_kind[kind] = summary.by_kind.get(kind, 0) + 1
        summary.records += len(current.records)
        for reason in current.skipped:
            # Bounded: a store full of unreadable keys must not fill memory either.
            if len(summary.skipped) < 1000:
                summary.skipped.append(reason)
            if on_skipped is not None:
                on_skipped(reason)
        if on_progress is not None:
            on_progress(summary.records)
        if current.next is None:
            return summary
        cursor = current.next
