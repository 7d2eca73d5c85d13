"""record_each: one outcome per event, malformed events rejected by index, the others applied."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

import training_analytics as ta
from training_analytics._context import Context
from training_analytics._protocol import Await, Batch, ScriptCall, Submit
from training_analytics.outcomes import record_each

from .factories import NOW, certification, snapshot

AT = "2025-06-10T10:00:00Z"


def _mixed() -> list[tuple[Any, str, str | None]]:
    """(event, expected status, expected error) in input order."""
    cert = certification("cert1", userId="u1", courseId="c1")
    return [
        ({"kind": "enrollment", "user_id": "u1", "course_id": "c1", "at": AT}, "applied", None),
        ("not an event", "rejected", "InvalidInputError"),
        ({"kind": "teleport", "userId": "u1", "courseId": "c1"}, "rejected", "InvalidInputError"),
        (
            {"kind": "enrollment", "userId": "u2", "courseId": "c1", "at": AT},
            "applied",
            None,
        ),
        ({"kind": "enrollment", "userId": "a:b", "courseId": "c1"}, "rejected", "InvalidIdError"),
        (
            {"kind": "enrollment", "userId": "u3", "courseId": "c1", "at": "yesterday"},
            "rejected",
            "InvalidDateError",
        ),
        ({"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": AT}, "unchanged", None),
        ({"kind": "certification_issued", "certification": cert, "at": AT}, "applied", None),
        (
            {"kind": "certification_status", "certId": "cert1", "newStatus": "claimed", "at": AT},
            "applied",
            None,
        ),
        (
            {"kind": "certification_status", "certId": "cert1", "newStatus": "issued"},
            "rejected",
            "IllegalTransitionError",
        ),
        (
            {"kind": "certification_status", "certId": "nope", "newStatus": "claimed"},
            "rejected",
            "CertificationNotFoundError",
        ),
        (
            {
                "kind": "progress",
                "progress": {"userId": "u1", "courseId": "c1", "overallScore": 150},
            },
            "rejected",
            "InvalidScoreError",
        ),
        (ta.ModuleStartEvent(user_id="u1", course_id="c1", module_id="m1"), "applied", None),
        ({"kind": "completion", "userId": "u3"}, "rejected", "InvalidInputError"),
        (
            MappingProxyType({"kind": "completion", "userId": "u3", "courseId": "c1", "at": AT}),
            "applied",
            None,
        ),
        (None, "rejected", "InvalidInputError"),
        (ta.TrainingCourse(id="c9", title={"en": "x"}, category="sales"), "rejected", None),
    ]


def _comparable(client: redis.Redis) -> dict[str, Any]:
    """The store's keys and values, as two write paths that applied the same events must leave
    them: a counter moved up then down in separate batches is a 0 field where one batch leaves
    none, and the recorded zone (written once per facade) is left out, since these tests flush
    the store under one facade; so are a cluster store's course registry (a facade adds a
    course to it once, before the course's first write) and its layout record (written by the
    store's first write)."""
    state = snapshot(client)
    for name in ("training:meta:time-zone", "training:meta:time-zone:{:meta}"):
        state.pop(name, None)
    state.pop("training:agg:courses:{:meta}", None)
    state.pop("training:meta:layout:{:meta}", None)
    for key, (kind, value) in state.items():
        if kind == "hash" and key.startswith("training:agg:"):
            state[key] = (kind, {f: v for f, v in value.items() if v != "0"})
    return state


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_record_each_reports_every_event_in_order(
    analytics: Any, client: redis.Redis, batch_size: int
) -> None:
    cases = _mixed()
    result = analytics.record_each([event for event, _, _ in cases], batch_size=batch_size)
    assert isinstance(result, ta.EventOutcomes)
    assert [r.index for r in result.results] == list(range(len(cases)))
    assert [r.status for r in result.results] == [status for _, status, _ in cases]
    for outcome, (_, status, error) in zip(result.results, cases, strict=True):
        if status == "rejected":
            assert outcome.error == (error or "InvalidInputError")
            assert outcome.message
        else:
            assert outcome.error is None and outcome.message is None
    statuses = [status for _, status, _ in cases]
    assert (result.applied, result.unchanged, result.rejected) == (
        statuses.count("applied"),
        statuses.count("unchanged"),
        statuses.count("rejected"),
    )
    # The JSON form the HTTP service sends back.
    dumped = result.model_dump(mode="json")
    assert dumped["results"][4] == {
        "index": 4,
        "status": "rejected",
        "error": "InvalidIdError",
        "message": dumped["results"][4]["message"],
    }

    # The rejected events changed nothing: the store is what the accepted events alone make.
    after = _comparable(client)
    client.flushdb()
    accepted = [event for event, status, _ in cases if status != "rejected"]
    again = analytics.record_many(
        [dict(e) if isinstance(e, MappingProxyType) else e for e in accepted]
    )
    assert again.rejected == []
    assert _comparable(client) == after
    assert analytics.get_course_enrollment_count("c1") == 3
    assert analytics.get_course_completion_count("c1") == 1
    record = analytics.get_training_certification("cert1")
    assert record is not None and record.status == "claimed"


@pytest.mark.parametrize("batch_size", [3, 1000])
def test_record_each_report_is_record_each_as_json_bytes(
    analytics: Any, client: redis.Redis, batch_size: int
) -> None:
    events = [event for event, _, _ in _mixed()]
    report = analytics.record_each_report(events, batch_size=batch_size)
    written = _comparable(client)
    client.flushdb()
    result = analytics.record_each(events, batch_size=batch_size)
    assert _comparable(client) == written
    assert report.json == result.model_dump_json().encode()
    assert (report.applied, report.unchanged, report.rejected) == (
        result.applied,
        result.unchanged,
        result.rejected,
    )
    assert report.rejected and report.unchanged and report.applied
    assert ta.EventOutcomes.model_validate_json(report.json) == result
    client.flushdb()
    nothing = analytics.record_each_report([])
    assert nothing.json == b'{"results":[],"applied":0,"unchanged":0,"rejected":0}'


def test_record_each_of_nothing_and_of_only_bad_events(analytics: Any, client: redis.Redis) -> None:
    empty = analytics.record_each([])
    assert (empty.results, empty.applied, empty.unchanged, empty.rejected) == ([], 0, 0, 0)
    bad = analytics.record_each(iter([{"kind": "enrollment"}, 42]))
    assert [(r.index, r.status) for r in bad.results] == [(0, "rejected"), (1, "rejected")]
    assert bad.rejected == 2
    assert snapshot(client) == {}


def test_record_each_needs_a_positive_batch_size(analytics: Any) -> None:
    with pytest.raises(ta.InvalidInputError):
        analytics.record_each([], batch_size=0)


def test_record_each_applies_what_record_many_applies(analytics: Any, client: redis.Redis) -> None:
    """Camel- and snake-case dicts and models give the same store as record_many."""
    events: list[Any] = [
        {"kind": "enrollment", "userId": f"u{i}", "courseId": "c1", "at": AT} for i in range(25)
    ]
    events += [
        {"kind": "module_completion", "user_id": f"u{i}", "course_id": "c1", "module_id": "m2"}
        for i in range(10)
    ]
    events += [
        {
            "kind": "progress",
            "progress": {
                "userId": f"u{i}",
                "courseId": "c1",
                "status": "in_progress",
                "overallScore": 50 + i,
                "startedAt": AT,
                "lastAccessedAt": AT,
                "totalTimeSpentMinutes": 12,
            },
        }
        for i in range(5)
    ]
    result = analytics.record_each(events, batch_size=7)
    assert (result.applied, result.unchanged, result.rejected) == (40, 0, 0)
    mine = _comparable(client)
    client.flushdb()
    analytics.record_many(events, batch_size=1000)
    assert _comparable(client) == mine


def _requests(count: int, batch_size: int) -> list[str]:
    """What record_each asks the executor for, driven by hand (no server)."""
    ctx = Context(keys=ta.TrainingKeys(), tz=ZoneInfo("UTC"), clock=lambda: NOW)
    events = [ta.EnrollmentEvent(user_id=f"u{i}", course_id="c1") for i in range(count)]
    op = record_each(ctx, events, batch_size=batch_size)
    asked: list[str] = []
    sizes: dict[int, int] = {}
    reply: Any = None

    def events_in(batch: Batch) -> int:
        args = batch.calls[0].args
        # One event goes out flat (many arguments); more as one JSON document [groups, events].
        if len(args) > 1:
            return 1
        document = args[0]
        text = document.decode() if isinstance(document, bytes) else str(document)
        return len(json.loads(text)[1])

    try:
        while True:
            request = op.send(reply)
            if isinstance(request, Batch) and not isinstance(request.calls[0], ScriptCall):
                # Plain commands around the writes: the store's recorded zone (none yet, then
                # this facade's), the stream's sequence key deleted at the end.
                reply = [None if call.args[0] == "GET" else "OK" for call in request.calls]
                if len(request.calls) == 2:
                    reply[1] = "UTC"
            elif isinstance(request, Batch):
                asked.append("batch")
                reply = [[1] * events_in(request)]
            elif isinstance(request, Submit):
                asked.append("submit")
                reply = len(sizes)
                sizes[reply] = events_in(request.batch)
            else:
                assert isinstance(request, Await)
                asked.append("await")
                reply = [[1] * sizes[request.ticket]]
    except StopIteration as done:
        assert done.value.applied == count
    return asked


def test_one_batch_is_one_plain_round_trip_and_more_are_pipelined() -> None:
    assert _requests(1000, 1000) == ["batch"]
    assert _requests(1, 1000) == ["batch"]
    assert _requests(0, 1000) == []
    assert _requests(1001, 1000) == ["submit", "submit", "await", "await"]
    assert _requests(3000, 1000) == ["submit", "submit", "await", "submit", "await", "await"]


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_text_that_is_not_unicode_refuses_its_event_only(
    analytics: Any, client: redis.Redis, batch_size: int
) -> None:
    """JSON's \\ud800 escape yields a lone surrogate, which no server can be sent."""
    events = json.loads(
        "["
        '{"kind":"enrollment","userId":"u1","courseId":"c1"},'
        '{"kind":"enrollment","userId":"\\ud800","courseId":"c1"},'
        '{"kind":"module_start","userId":"u2","courseId":"\\udfff","moduleId":"m1"},'
        '{"kind":"certification_issued","certification":{"id":"k1","userId":"u1",'
        '"courseId":"c1","userName":"\\ud83d","issuedAt":"2025-06-01T10:00:00Z"}},'
        '{"kind":"enrollment","userId":"\\ud83d\\ude00","courseId":"c1"},'
        '{"kind":"enrollment","userId":"u3","courseId":"c1"}'
        "]"
    )
    result = analytics.record_each(events, batch_size=batch_size)
    assert [(r.status, r.error) for r in result.results] == [
        ("applied", None),
        ("rejected", "InvalidIdError"),
        ("rejected", "InvalidIdError"),
        ("rejected", "InvalidInputError"),
        ("applied", None),  # a valid pair: one emoji
        ("applied", None),
    ]
    assert "not valid Unicode" in (result.results[1].message or "")
    assert sorted(analytics.get_course_enrollments("c1")) == ["u1", "u3", "\U0001f600"]
    assert analytics.get_training_certification("k1") is None
    assert client.keys("*module*") == []
