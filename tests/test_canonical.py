"""The fast way in for canonical progress saves never disagrees with the general path.

``_canonical.progress_values`` may decline any save (None: the general path decides), but a save
it takes must be one the general path accepts, with the same stored values.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import redis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

import training_analytics as ta
from training_analytics._canonical import (
    CanonicalProgress,
    certification_values,
    line_event,
    progress_values,
)
from training_analytics._codec import certification_to_fields, progress_to_fields
from training_analytics._context import Context
from training_analytics._writes import EventBatch
from training_analytics.errors import TrainingAnalyticsError
from training_analytics.fileformats import ImportRecord, parse_jsonl
from training_analytics.ingest import encode
from training_analytics.types import (
    EnhancedTrainingProgress,
    ProgressEvent,
    TrainingCertificationRecord,
)

_PROGRESS_EVENT_MODEL = TypeAdapter(ProgressEvent)


def _general(raw: dict[str, Any]) -> tuple[str, str, list[str]] | None:
    try:
        progress = EnhancedTrainingProgress.model_validate(raw)
        return progress.user_id, progress.course_id, progress_to_fields(progress)
    except (ValidationError, TrainingAnalyticsError):
        return None


_ascii_ids = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":{}*?[]\\"),
    min_size=1,
    max_size=12,
)
_canonical_ids = st.one_of(
    st.sampled_from(["u1", "learner-0000013", "course-14", "m1", "x" * 200]), _ascii_ids
)
_wild_ids = st.one_of(
    st.text(min_size=0, max_size=6),
    st.sampled_from(["", "x" * 201, "a:b", "a{b}", "a b", "a*", "é", "a\\b", "a[b]", "a?"]),
    st.integers(),
    st.none(),
)
_canonical_timestamps = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(lambda d: f"{d.year:04d}-{d:%m-%dT%H:%M:%S}.{d.microsecond // 1000:03d}Z")
_wild_timestamps = st.one_of(
    st.sampled_from(
        [
            "2024-02-29T00:00:00.000Z",
            "2025-02-29T00:00:00.000Z",
            "2025-04-31T10:00:00.000Z",
            "0000-01-01T00:00:00.000Z",
            "2025-01-06T14:15:03Z",
            "2025-01-06T14:15:03.530+02:00",
            "2025-13-01T00:00:00.000Z",
            "2025-01-06T24:00:00.000Z",
            "2025-01-06",
            "",
            "yesterday",
        ]
    ),
    st.just(datetime(2025, 1, 6, tzinfo=UTC)),
    st.none(),
    st.integers(),
)
_canonical_numbers = st.one_of(
    st.integers(min_value=0, max_value=100), st.floats(min_value=0, max_value=100)
)
_wild_numbers = st.one_of(
    st.integers(min_value=-5, max_value=105),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [1e16, 1e-7, 2**53 - 1, 2**53, 2**70, 2**1024 - 2**970 - 1, 2**1024 - 2**970, 10**400]
    ),
    st.sampled_from([True, False, -0.0]),
    st.sampled_from(["90", "9e1", "", "x"]),
    st.none(),
)
_statuses = st.sampled_from(["not_started", "in_progress", "completed"])
_wild_statuses = st.sampled_from(["done", "", None, 1])
_text = st.one_of(st.text(max_size=4), st.none(), st.integers())


def _build(
    draw: st.DrawFn, fields: list[tuple[str, st.SearchStrategy[Any], st.SearchStrategy[Any]]]
) -> dict[str, Any]:
    """Mostly canonical: each field present or not, at most two of them wild."""
    names = [name for name, _, _ in fields]
    wild = draw(st.sets(st.sampled_from(names), max_size=2))
    out: dict[str, Any] = {}
    for name, canonical, odd in fields:
        if name in wild:
            out[name] = draw(odd)
        elif canonical is not _ABSENT and (name in _REQUIRED or draw(st.booleans())):
            out[name] = draw(canonical)
    if draw(st.booleans()):  # the order a client sends need not be the model's
        out = dict(reversed(list(out.items())))
    return out


_ABSENT: st.SearchStrategy[Any] = st.nothing()
_REQUIRED = {"userId", "courseId"}


@st.composite
def _modules(draw: st.DrawFn) -> dict[str, Any]:
    module = _build(
        draw,
        [
            ("score", _canonical_numbers, _wild_numbers),
            ("startedAt", _canonical_timestamps, _wild_timestamps),
            ("completedAt", _canonical_timestamps, _wild_timestamps),
            ("attempts", st.integers(min_value=0, max_value=50), _wild_numbers),
            ("timeSpentMinutes", _canonical_numbers, _wild_numbers),
            ("module_id", _ABSENT, _canonical_ids),
            ("extra", _ABSENT, st.integers()),
        ],
    )
    module["moduleId"] = draw(st.one_of(_canonical_ids, _canonical_ids, _wild_ids))
    module["status"] = draw(st.one_of(_statuses, _statuses, _wild_statuses))
    return module


@st.composite
def _saves(draw: st.DrawFn) -> dict[str, Any]:
    save = _build(
        draw,
        [
            ("userId", _canonical_ids, _wild_ids),
            ("courseId", _canonical_ids, _wild_ids),
            ("status", _statuses, _wild_statuses),
            ("moduleProgress", st.lists(_modules(), max_size=4), st.just([{"moduleId": "m"}])),
            ("overallScore", _canonical_numbers, _wild_numbers),
            ("startedAt", _canonical_timestamps, _wild_timestamps),
            ("completedAt", _canonical_timestamps, _wild_timestamps),
            ("lastAccessedAt", _canonical_timestamps, _wild_timestamps),
            ("totalTimeSpentMinutes", _canonical_numbers, _wild_numbers),
            ("certificateId", _ascii_ids, _text),
            ("certificateIssuedAt", _canonical_timestamps, _wild_timestamps),
            ("user_id", _ABSENT, _canonical_ids),
            ("unknown", _ABSENT, st.integers()),
        ],
    )
    return save


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_saves())
def test_a_save_the_fast_path_takes_is_one_the_general_path_stores_the_same(
    raw: dict[str, Any],
) -> None:
    fast = progress_values(raw)
    event("fast path" if fast is not None else "general path")
    if fast is not None:
        assert fast == _general(raw)


def _canonical_save(**changes: Any) -> dict[str, Any]:
    save: dict[str, Any] = {
        "userId": "learner-0000013",
        "courseId": "course-14",
        "status": "in_progress",
        "moduleProgress": [
            {
                "moduleId": "m1",
                "status": "completed",
                "score": 90,
                "attempts": 1,
                "timeSpentMinutes": 15.5,
                "completedAt": "2025-01-06T14:15:03.530Z",
            },
            {"status": "in_progress", "moduleId": "m2", "startedAt": "2025-01-07T07:14:23.628Z"},
        ],
        "overallScore": 82.25,
        "startedAt": "2025-01-06T13:51:24.659Z",
        "lastAccessedAt": "2025-01-07T07:14:23.628Z",
        "totalTimeSpentMinutes": 49,
    }
    save.update(changes)
    return save


def test_what_a_bulk_import_brings_takes_the_fast_path() -> None:
    # Were the fast path never taken, the property above would hold vacuously.
    save = _canonical_save()
    assert progress_values(save) == _general(save) is not None
    assert progress_values(_canonical_save(completedAt="2025-01-08T00:00:00.000Z")) is not None


def test_values_to_convert_or_refuse_go_the_general_way() -> None:
    cases: list[dict[str, Any]] = [
        {"overallScore": "82"},  # converted by the general path
        {"overallScore": 101},  # refused with InvalidScoreError
        {"overallScore": math.nan},
        {"overallScore": True},
        {"startedAt": "2025-01-06T13:51:24Z"},  # normalised
        {"completedAt": "2025-01-05T00:00:00.000Z"},  # before startedAt: refused
        {"startedAt": "2024-02-29T00:00:00.000Z"},  # leap day: the general path knows
        {"certificateId": None},
        {"certificateId": "é"},
        {"user_id": "x"},
        {"userId": "a:b"},
    ]
    for changes in cases:
        assert progress_values(_canonical_save(**changes)) is None, changes


def test_record_many_stores_a_canonical_save_as_the_single_call_does(
    analytics: Any, client: redis.Redis, make_analytics: Any
) -> None:
    save = _canonical_save()
    result = analytics.record_many([{"kind": "progress", "progress": save}])
    assert result.applied == 1
    stored: dict[str, str] = client.hgetall(  # type: ignore[assignment]
        analytics.keys.user_course_progress("learner-0000013", "course-14")
    )
    client.flushdb()
    make_analytics().save_user_course_progress(ta.EnhancedTrainingProgress.model_validate(save))
    assert (
        client.hgetall(analytics.keys.user_course_progress("learner-0000013", "course-14"))
        == stored
    )
    assert stored["moduleProgress"].startswith('[{"moduleId":"m1","status":"completed","score":90')


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_saves(), st.sampled_from([{}, {"at": "2025-01-06T14:15:03.530Z"}, {"at": 5}, {"x": 1}]))
def test_a_line_the_fast_path_takes_is_one_the_general_path_stores_the_same(
    raw: dict[str, Any], extra: dict[str, Any]
) -> None:
    try:
        line = json.dumps({"kind": "progress", "progress": raw, **extra}).encode()
    except (TypeError, ValueError):  # a datetime or 10**400 has no JSON form here
        return
    fast = line_event(line)
    event("fast path" if fast is not None else "general path")
    if fast is not None:
        try:
            model = _PROGRESS_EVENT_MODEL.validate_json(line)
        except ValidationError:
            model = None
        assert model is not None
        assert fast == (
            model.progress.user_id,
            model.progress.course_id,
            progress_to_fields(model.progress),
        )


def test_an_import_reads_a_canonical_progress_line_the_fast_way() -> None:
    lines = [
        (
            1,
            b"\xef\xbb\xbf"
            + json.dumps({"kind": "progress", "progress": _canonical_save()}).encode(),
        )
    ]
    [(number, record)] = list(parse_jsonl(lines))
    assert number == 1 and type(record) is CanonicalProgress
    assert record == _general(_canonical_save())


def _general_certificate(raw: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    try:
        record = TrainingCertificationRecord.model_validate(raw)
        if record.status == "claimed" and not record.claimed_at:
            return None  # the event's time fills it in on the general path
        return record.id, certification_to_fields(record)
    except (ValidationError, TrainingAnalyticsError):
        return None


_certificate_statuses = st.sampled_from(["issued", "claimed", "expired", "revoked"])
_names = st.one_of(
    st.dictionaries(st.sampled_from(["en", "es", "pt"]), st.text(max_size=8), max_size=3),
    st.just({"en": "Módulo \ud800"}),
)


@st.composite
def _certificates(draw: st.DrawFn) -> dict[str, Any]:
    record = _build(
        draw,
        [
            ("id", _canonical_ids, _wild_ids),
            ("userId", _canonical_ids, _wild_ids),
            ("courseId", _canonical_ids, _wild_ids),
            ("courseName", _names, st.one_of(st.just({"en": 1}), st.just("x"), st.none())),
            ("userName", st.text(max_size=6), _text),
            ("userEmail", st.text(max_size=6), _text),
            (
                "status",
                st.sampled_from(["issued", "claimed", "expired", "revoked"]),
                _wild_statuses,
            ),
            ("issuedAt", _canonical_timestamps, _wild_timestamps),
            ("claimedAt", _canonical_timestamps, _wild_timestamps),
            ("expiresAt", _canonical_timestamps, _wild_timestamps),
            ("credentialUrl", st.text(max_size=6), _text),
            ("verificationCode", st.text(max_size=6), _text),
            ("score", _canonical_numbers, _wild_numbers),
            ("user_id", _ABSENT, _canonical_ids),
        ],
    )
    for name in ("id", "userId", "courseId", "issuedAt"):
        record.setdefault(
            name, draw(_canonical_ids if name != "issuedAt" else _canonical_timestamps)
        )
    return record


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_certificates())
def test_a_certificate_the_fast_path_takes_is_one_the_general_path_stores_the_same(
    raw: dict[str, Any],
) -> None:
    fast = certification_values(raw)
    event("fast path" if fast is not None else "general path")
    if fast is not None:
        assert fast == _general_certificate(raw)


def test_a_certificate_as_a_platform_sends_it_takes_the_fast_path() -> None:
    record = {
        "id": "cert-1",
        "userId": "u1",
        "courseId": "c1",
        "courseName": {"en": "Sales 101", "es": "Ventas 101"},
        "status": "claimed",
        "issuedAt": "2025-01-06T14:15:03.530Z",
        "claimedAt": "2025-01-07T09:00:00.000Z",
        "expiresAt": "2026-01-06T14:15:03.530Z",
        "score": 88.5,
    }
    assert certification_values(record) == _general_certificate(record) is not None
    assert certification_values({**record, "claimedAt": None}) is None
    assert certification_values({**record, "expiresAt": record["issuedAt"]}) is None


# --- a JSON Lines line of any kind (line_event) ------------------------------------------------

_CLOCK = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _encoded(record: Any) -> tuple[str, str] | list[list[Any]]:
    """The events a record becomes in a batch (the script's input), or the error refusing it."""
    batch = EventBatch(_LINE_CONTEXT)
    try:
        encode(batch, record)
    except TrainingAnalyticsError as exc:
        return type(exc).__name__, str(exc)
    return batch.events


# One context for both paths: they then share key groups (compared by identity) and the clock.
_LINE_CONTEXT = Context(clock=lambda: _CLOCK)
_ONE_LINE = TypeAdapter(ImportRecord)


def _general_line(line: bytes) -> tuple[str, str] | list[list[Any]]:
    """What the general path makes of a line: its model's encoding (or refusal)."""
    try:
        model = _ONE_LINE.validate_json(line)
    except ValidationError as exc:
        return "ValidationError", str(exc)
    return _encoded(model)


_any_times = st.one_of(_canonical_timestamps, _wild_timestamps)


@st.composite
def _event_lines(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(
            [
                "enrollment",
                "completion",
                "module_start",
                "module_completion",
                "certification_issued",
                "certification_status",
                "progress",
            ]
        )
    )
    if kind in ("enrollment", "completion", "module_start", "module_completion"):
        fields: list[tuple[str, st.SearchStrategy[Any], st.SearchStrategy[Any]]] = [
            ("userId", _canonical_ids, _wild_ids),
            ("courseId", _canonical_ids, _wild_ids),
            ("at", _canonical_timestamps, _wild_timestamps),
            ("user_id", _ABSENT, _canonical_ids),
            ("extra", _ABSENT, st.integers()),
        ]
        if kind.startswith("module"):
            fields.append(("moduleId", _canonical_ids, _wild_ids))
        record = _build(draw, fields)
        if kind.startswith("module"):
            record.setdefault("moduleId", draw(_canonical_ids))
    elif kind == "certification_status":
        record = _build(
            draw,
            [
                ("certId", _canonical_ids, _wild_ids),
                ("newStatus", _certificate_statuses, _wild_statuses),
                ("claimedAt", _any_times, _wild_timestamps),
                ("at", _canonical_timestamps, _wild_timestamps),
                ("cert_id", _ABSENT, _canonical_ids),
            ],
        )
        record.setdefault("certId", draw(_canonical_ids))
        record.setdefault("newStatus", draw(_certificate_statuses))
    elif kind == "certification_issued":
        record = {"certification": draw(_certificates())}
        if draw(st.booleans()):
            record["at"] = draw(_any_times)
    else:
        record = {"progress": draw(_saves())}
        if draw(st.booleans()):
            record["at"] = draw(_any_times)
    record["kind"] = draw(st.one_of(st.just(kind), st.just(kind), st.sampled_from(["x", 1])))
    if draw(st.booleans()):
        record = dict(reversed(list(record.items())))
    try:
        return json.dumps(record, separators=(",", ":")).encode()
    except (TypeError, ValueError):  # a datetime or 10**400 has no JSON form here
        return json.dumps({"kind": kind}).encode()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_event_lines())
def test_a_line_of_any_kind_the_fast_path_takes_is_encoded_as_the_general_path_does(
    line: bytes,
) -> None:
    # The fast path only declines (None: the general path reads the line as before), so it
    # refuses nothing the general path accepts; what it takes must become the same script
    # input, or the same refusal, as the line's model does.
    fast = line_event(line)
    event(f"fast path: {type(fast).__name__}" if fast is not None else "general path")
    if fast is not None:
        general = _general_line(line)
        assert general[0] != "ValidationError", general
        assert _encoded(fast) == general


def test_the_usual_lines_of_every_kind_take_the_fast_path() -> None:
    # Were the fast path never taken, the property above would hold vacuously.
    certificate = {
        "id": "cert-1",
        "userId": "u1",
        "courseId": "c1",
        "courseName": {"en": "Sales 101"},
        "status": "issued",
        "issuedAt": "2025-01-06T14:15:03.530Z",
        "expiresAt": "2026-01-06T14:15:03.530Z",
        "score": 88,
    }
    lines: list[dict[str, Any]] = [
        {"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": "2025-01-06T00:24:58.518Z"},
        {"kind": "completion", "userId": "u1", "courseId": "c1"},
        {"kind": "module_start", "userId": "u1", "courseId": "c1", "moduleId": "m1"},
        {"kind": "module_completion", "userId": "u1", "courseId": "c1", "moduleId": "m1"},
        {"kind": "progress", "progress": _canonical_save(), "at": "2025-01-07T07:14:23.628Z"},
        {
            "kind": "certification_issued",
            "at": certificate["issuedAt"],
            "certification": certificate,
        },
        {"kind": "certification_status", "certId": "cert-1", "newStatus": "claimed"},
        {"kind": "certification_status", "certId": "cert-1", "newStatus": "revoked", "at": 5},
    ]
    for record in lines:
        line = json.dumps(record).encode()
        fast = line_event(line)
        assert fast is not None, record
        assert _encoded(fast) == _general_line(line)
    # A status change the encoder refuses is refused the same way on both paths.
    bad = b'{"kind":"certification_status","certId":"a:b","newStatus":"claimed"}'
    fast = line_event(bad)
    assert fast is not None and _encoded(fast) == _general_line(bad)
    assert _encoded(fast)[0] == "InvalidIdError"
    for declined in (
        b'{"kind":"enrollment","user_id":"u1","courseId":"c1"}',  # snake_case: general path
        b'{"kind":"enrollment","userId":"u1","courseId":"c1","at":null}',
        b'{"kind":"enrollment","userId":"u1","courseId":"c1","at":"2025-01-06T00:24:58Z"}',
        b'{"kind":"module_start","userId":"a:b","courseId":"c1","moduleId":"m1"}',
        b'{"kind":"enrollment","userId":"u1","courseId":"c1","source":"lms"}',
    ):
        assert line_event(declined) is None, declined
