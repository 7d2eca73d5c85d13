"""``import_lines``: numbered records streamed into the store (``import FILE``'s path), and the
reading of JSON Lines a line at a time into models (``fileformats.parse_jsonl``).

Driven through the ``analytics`` fixture (sync and async), against the test server.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import redis

import training_analytics as ta
from training_analytics import fileformats as ff

from .factories import certification, course, snapshot
from .test_fileformats import _read


def _rejections() -> tuple[list[tuple[int, str, str]], ta.ImportTally]:
    seen: list[tuple[int, str, str]] = []
    return seen, ta.ImportTally(on_rejected=lambda *r: seen.append(r))


def test_numbered_records_apply_in_order_and_rejections_keep_their_numbers(
    analytics: Any, client: redis.Redis
) -> None:
    records: list[tuple[int, Any]] = [
        (1, {"kind": "course", "course": course("c1", modules=2)}),
        (2, {"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": "2025-06-01T10:00:00Z"}),
        (4, ta.InvalidInputError("not JSON: whatever")),  # refused when read
        (5, {"kind": "certification_status", "certId": "nope", "newStatus": "claimed"}),
        (6, ta.ModuleStartEvent(user_id="u1", course_id="c1", module_id="m1")),
        (7, {"kind": "enrollment", "userId": "bad:id", "courseId": "c1"}),
        (8, {"kind": "course", "course": course("c1", modules=3)}),  # replaced, in its place
        (9, {"kind": "issue", "certification": certification("cert1")}),
        (10, {"kind": "certification_issued", "certification": certification("cert1")}),
        (11, {"kind": "certification_status", "certId": "cert1", "newStatus": "claimed"}),
        (12, {"kind": "certification_status", "certId": "cert1", "newStatus": "claimed"}),  # again
        (
            13,
            {"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": "2025-06-02T10:00:00Z"},
        ),
    ]
    seen, tally = _rejections()
    done = analytics.import_lines(records, tally, batch_size=2)
    assert done is tally or done == tally
    assert [(line, error) for line, error, _ in seen] == [
        (4, "InvalidInputError"),
        (5, "CertificationNotFoundError"),
        (7, "InvalidIdError"),
        (9, "InvalidInputError"),
    ]
    assert seen[0][2] == "not JSON: whatever"
    assert (tally.applied, tally.unchanged, tally.rejected) == (6, 2, 4)
    assert (tally.records, tally.settled) == (12, 13)
    assert len(analytics.get_training_course("c1").modules) == 3
    assert analytics.get_course_enrollment_count("c1") == 1
    assert analytics.get_credential_stats().claimed == 1
    assert not list(client.scan_iter("training:ingest:*")), "the stream's sequence key is left"

    # Replayed: nothing changes; what was applied reports unchanged.
    before = snapshot(client)
    seen, again = _rejections()
    analytics.import_lines(records, again, batch_size=2)
    assert snapshot(client) == before
    # Only the two versions of c1, each replacing the other in turn.
    assert (again.applied, again.records) == (2, 12)


def test_a_store_error_stops_the_stream_and_says_how_far_it_got(
    analytics: Any, client: redis.Redis
) -> None:
    client.set("training:enrollments:c2", "a string where a set belongs")
    records = [
        (n, {"kind": "enrollment", "userId": f"u{n}", "courseId": "c1"}) for n in range(1, 6)
    ]
    tally = ta.ImportTally()
    analytics.import_lines(records, tally, batch_size=2)
    assert (tally.applied, tally.settled) == (5, 5)

    class BrokenError(Exception):
        pass

    def reading() -> Any:
        yield from (
            (n, {"kind": "module_start", "userId": "u", "courseId": "c1", "moduleId": f"m{n}"})
            for n in range(1, 5)
        )
        raise BrokenError

    stopped = ta.ImportTally()
    with pytest.raises(BrokenError):
        analytics.import_lines(reading(), stopped, batch_size=2)
    # The batches sent before the input failed were settled before it raised.
    assert (stopped.applied, stopped.settled) == (4, 4)


def test_bad_arguments_are_refused_before_anything_is_written(
    analytics: Any, client: redis.Redis
) -> None:
    with pytest.raises(ta.InvalidInputError):
        analytics.import_lines(None, ta.ImportTally())
    with pytest.raises(ta.InvalidInputError):
        analytics.import_lines([], ta.ImportTally(), batch_size=0)
    assert snapshot(client) == {}


# --- parse_jsonl ----------------------------------------------------------------------------


def test_parse_jsonl_gives_models_and_refuses_lines_as_read_lines_does() -> None:
    data = (
        b'\xef\xbb\xbf{"kind":"enrollment","userId":"u1","courseId":"c1"}\n\n   \n[1]\n"text"\n'
        b"\xff\xfe\n{bad\n"
        b'{"kind":"progress","progress":{"userId":"u1","courseId":"c1","overallScore":5}}\n'
        b'{"kind":"progress","progress":{"userId":"u1","courseId":"c1","overallScore":"5"}}\n'
        b'{"kind":"course","course":' + json.dumps(course("c1")).encode() + b"}\n"
        b'{"kind":"enrollment","user_id":"\\ud800","courseId":"c1"}\n'
        b'{"kind":"enrollment","userId":"u1"}\n'
        b"\xe3\x80\x80\n"  # an ideographic space: blank to read_lines
    )
    parsed = list(ff.numbered_records(ff.LineReader(io.BytesIO(data)), "jsonl"))
    read = _read(data)
    assert [n for n, _ in parsed] == [line.number for line in read]
    for (number, record), line in zip(parsed, read, strict=True):
        if line.error is not None:
            assert isinstance(record, ta.InvalidInputError), number
            assert str(record) == str(line.error)
    kinds = [type(record).__name__ for _, record in parsed]
    assert kinds == [
        "CanonicalEvent",  # an event in the canonical form: its encoder call
        "InvalidInputError",
        "InvalidInputError",
        "InvalidInputError",
        "InvalidInputError",
        # A save in the stored form comes as the write path's values; one to convert, a model.
        "CanonicalProgress",
        "ProgressEvent",
        "CourseRecord",
        "dict",  # a lone surrogate: json.loads takes it, the write path refuses it
        "dict",  # an invalid event: refused by the write path, with its usual message
    ]


def test_a_long_line_is_refused_by_number_without_being_parsed() -> None:
    data = b'{"kind":"enrollment","userId":"u1","courseId":"c1"}\n' + b"x" * 200 + b"\n"
    parsed = list(ff.numbered_records(ff.LineReader(io.BytesIO(data), 100), "jsonl"))
    assert type(parsed[0][1]).__name__ == "CanonicalEvent"
    assert parsed[1][0] == 2 and "longer than 100 bytes" in str(parsed[1][1])


def test_import_file_reports_lines_and_rejections_in_order(analytics: Any) -> None:
    lines = [
        {"kind": "enrollment", "userId": f"u{i}", "courseId": "c1", "at": "2025-06-01T10:00:00Z"}
        for i in range(7)
    ]
    text = "\n".join(json.dumps(line) for line in lines[:3])
    text += '\n{"kind":"enrollment","user_id":"\\ud800","courseId":"c1"}\n'
    text += "\n".join(json.dumps(line) for line in lines[3:]) + "\nnot json\n"
    rejected: list[ff.RejectedLine] = []
    summary = ff.import_file(
        io.BytesIO(text.encode()), "jsonl", analytics.import_lines, on_rejected=rejected.append
    )
    assert [(r.line, r.error) for r in rejected] == [
        (4, "InvalidIdError"),
        (9, "InvalidInputError"),
    ]
    assert "not valid Unicode" in rejected[0].message
    assert (summary.lines, summary.applied, summary.rejected, summary.last_line) == (9, 7, 2, 9)
    assert analytics.get_course_enrollment_count("c1") == 7
