"""The import/export file formats, without a store: line bounds, JSON Lines, CSV, chunks."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import training_analytics as ta
from training_analytics import fileformats as ff
from training_analytics.types import EventOutcome, EventOutcomes


class _Recording(io.BytesIO):
    """A stream that remembers the largest read asked of it (and that it was asked)."""

    largest = 0

    def readline(self, size: int | None = -1) -> bytes:
        self.largest = max(self.largest, size if size and size > 0 else 1 << 62)
        return super().readline(size)

    def read1(self, size: int | None = -1) -> bytes:
        self.largest = max(self.largest, size if size and size > 0 else 1 << 62)
        return super().read1(size)


def _read(data: bytes, fmt: ff.Format = "jsonl", limit: int = ff.MAX_LINE_BYTES) -> list[ff.Line]:
    return list(ff.read_lines(ff.LineReader(io.BytesIO(data), limit), fmt))


def _summary(lines: list[ff.Line]) -> list[tuple[int, Any]]:
    return [(ln.number, ln.record if ln.error is None else type(ln.error).__name__) for ln in lines]


def test_line_limit_is_exact_and_a_long_line_is_never_held() -> None:
    ten = b'{"a":"12"}'  # 10 bytes
    eleven = b'{"a":"123"}'
    data = ten + b"\n" + eleven + b"\r\n" + b"x" * 100_000 + b"\n" + ten
    stream = _Recording(data)
    reader = ff.LineReader(stream, max_line_bytes=10)
    lines = list(ff.read_lines(reader, "jsonl"))
    assert _summary(lines) == [
        (1, {"a": "12"}),
        (2, "InvalidInputError"),
        (3, "InvalidInputError"),
        (4, {"a": "12"}),  # the last line needs no newline
    ]
    assert "longer than 10 bytes" in str(lines[2].error)
    assert reader.bytes_read == len(data)
    assert sum(line.size for line in lines) == len(data)
    # Never more than a block at a time, whatever the line's length.
    assert 0 < stream.largest <= 64 * 1024


def test_jsonl_lines_numbers_blanks_bom_and_bad_text() -> None:
    data = b'\xef\xbb\xbf{"kind":"x"}\n\n   \n[1]\n"text"\n\xff\xfe\n{bad\n{"k":1}\n'
    assert _summary(_read(data)) == [
        (1, {"kind": "x"}),
        (4, "InvalidInputError"),
        (5, "InvalidInputError"),
        (6, "InvalidInputError"),
        (7, "InvalidInputError"),
        (8, {"k": 1}),
    ]
    messages = [str(line.error) for line in _read(data) if line.error is not None]
    assert messages[0] == "a record is a JSON object, got list"
    assert messages[2].startswith("not UTF-8 text")
    assert messages[3].startswith("not JSON")


def test_csv_header_cells_and_json_columns() -> None:
    data = (
        "\ufeffkind,user_id,courseId,progress,at\n"
        'enrollment,u1,c1,,"2025-06-01T10:00:00Z"\n'
        'progress,,,"{""userId"":""u1"",""courseId"":""c1"",""overallScore"":5}",\n'
        "enrollment,u2\n"
        'progress,,,"{bad",\n'
        'enrollment,"unterminated,c1,,\n'
    ).encode()
    assert _summary(_read(data, "csv")) == [
        (2, {"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": "2025-06-01T10:00:00Z"}),
        (
            3,
            {"kind": "progress", "progress": {"userId": "u1", "courseId": "c1", "overallScore": 5}},
        ),
        (4, "InvalidInputError"),
        (5, "InvalidInputError"),
        (6, "InvalidInputError"),
    ]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("kind,colour", r"unknown CSV column\(s\) colour"),
        ("userId,courseId", "no 'kind' column"),
        ("kind,userId,user_id", "appears twice"),
    ],
)
def test_a_bad_csv_header_refuses_the_file(header: str, message: str) -> None:
    with pytest.raises(ta.InvalidInputError, match=message):
        _read(f"{header}\nenrollment,u1\n".encode(), "csv")


def test_chunks_are_bounded_in_lines_and_bytes() -> None:
    lines = [ff.Line(number=i + 1, size=100, record={}) for i in range(25)]
    assert [len(c) for c in ff.chunks(lines, max_lines=10)] == [10, 10, 5]
    assert [len(c) for c in ff.chunks(lines, max_lines=10, max_bytes=250)] == [3] * 8 + [1]


def test_settle_matches_outcomes_to_line_numbers() -> None:
    chunk = [
        ff.Line(3, 10, record={}),
        ff.Line(4, 10, error=ta.InvalidInputError("not JSON")),
        ff.Line(6, 10, record={}),
        ff.Line(7, 10, record={}),
    ]
    outcomes = EventOutcomes(
        results=[
            EventOutcome(index=0, status="applied"),
            EventOutcome(index=1, status="rejected", error="InvalidIdError", message="bad id"),
            EventOutcome(index=2, status="unchanged"),
        ],
        applied=1,
        unchanged=1,
        rejected=1,
    )
    assert list(ff.settle(chunk, outcomes)) == [
        ff.RejectedLine(4, "InvalidInputError", "not JSON"),
        ff.RejectedLine(6, "InvalidIdError", "bad id"),
    ]


def test_detect_format() -> None:
    assert ff.detect_format("a/b.JSONL") == "jsonl"
    assert ff.detect_format("x.ndjson") == "jsonl"
    assert ff.detect_format("x.csv") == "csv"
    assert ff.detect_format("x.txt", "csv") == "csv"
    with pytest.raises(ta.InvalidInputError, match="--format"):
        ff.detect_format("x.txt")
    with pytest.raises(ta.InvalidInputError, match="jsonl, csv or xapi"):
        ff.detect_format("x.csv", "xml")


def test_record_lines_are_compact_utf8_json() -> None:
    line = ff.record_line({"kind": "course", "course": {"title": {"es": "Señal"}}})
    assert line == '{"kind":"course","course":{"title":{"es":"Señal"}}}\n'


def test_import_stream_applies_chunk_after_chunk_and_says_how_far_it_got() -> None:
    data = b"".join(b'{"n":%d}\n' % i for i in range(25)) + b"oops\n"
    seen: list[list[int]] = []

    def apply(records: list[dict[str, Any]]) -> EventOutcomes:
        seen.append([r["n"] for r in records])
        if len(seen) == 3:
            raise ta.StoreUnavailableError("gone")
        return EventOutcomes(
            results=[EventOutcome(index=i, status="applied") for i in range(len(records))],
            applied=len(records),
        )

    summary = ff.ImportSummary()
    with pytest.raises(ta.StoreUnavailableError):
        ff.import_stream(io.BytesIO(data), "jsonl", apply, chunk_lines=10, summary=summary)
    assert seen == [list(range(10)), list(range(10, 20)), [20, 21, 22, 23, 24]]
    assert (summary.last_line, summary.lines, summary.applied) == (20, 20, 20)

    seen.clear()
    rejected: list[ff.RejectedLine] = []
    done = ff.import_stream(
        io.BytesIO(data[: data.index(b'{"n":20}')] + b"oops\n"),
        "jsonl",
        apply,
        chunk_lines=10,
        on_rejected=rejected.append,
    )
    assert (done.lines, done.applied, done.rejected, done.last_line) == (21, 20, 1, 21)
    assert [r.line for r in rejected] == [21]


class _Trickle(io.BytesIO):
    """A pipe that hands over a few bytes at a time."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__(data)
        self.step = step

    def read1(self, size: int | None = -1) -> bytes:
        return super().read1(min(self.step, size if size and size > 0 else self.step))


def _by_readline(data: bytes, limit: int) -> list[tuple[int, int, bytes | None]]:
    """The lines as a readline loop bounded by the limit finds them (the reader's contract)."""
    stream, number = io.BytesIO(data), 0
    found: list[tuple[int, int, bytes | None]] = []
    while chunk := stream.readline(limit + 1):
        number += 1
        size = len(chunk)
        if chunk.endswith(b"\n") or len(chunk) <= limit:
            found.append((number, size, chunk.rstrip(b"\r\n")))
            continue
        while not chunk.endswith(b"\n") and (chunk := stream.readline(1000)):
            size += len(chunk)
        found.append((number, size, None))
    return found


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=40), st.sampled_from([b"\n", b"\r\n", b"\r\r\n"])
        ),
        max_size=12,
    ),
    last=st.integers(min_value=0, max_value=40),
    limit=st.integers(min_value=1, max_value=20),
    step=st.integers(min_value=1, max_value=50),
)
def test_the_reader_splits_lines_as_readline_would_across_blocks(
    lines: list[tuple[int, bytes]], last: int, limit: int, step: int
) -> None:
    data = b"".join(b"x" * length + ending for length, ending in lines) + b"y" * last
    reader = ff.LineReader(_Trickle(data, step), limit)
    assert list(reader) == _by_readline(data, limit)
    assert reader.bytes_read == len(data)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.tuples(st.integers(min_value=0, max_value=40), st.sampled_from([b"\n", b"\r\n"])),
        max_size=12,
    ),
    last=st.integers(min_value=0, max_value=40),
    limit=st.integers(min_value=1, max_value=20),
    step=st.integers(min_value=1, max_value=50),
)
def test_the_reader_hands_out_whole_blocks_counted_in_bytes(
    lines: list[tuple[int, bytes]], last: int, limit: int, step: int
) -> None:
    # The bulk import loops over a block's lines; the progress it reports after each block is
    # the bytes of the lines handed out so far, never of a line still being read.
    data = b"".join(b"x" * length + ending for length, ending in lines) + b"y" * last
    reader = ff.LineReader(_Trickle(data, step), limit)
    found: list[tuple[int, int, bytes | None]] = []
    for block in reader.blocks():
        assert block
        found += block
        assert reader.bytes_read == sum(size for _, size, _ in found)
        assert reader.number == found[-1][0]
    assert found == _by_readline(data, limit)
    assert reader.bytes_read == len(data)
