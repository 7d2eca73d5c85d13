"""The partition rule of ``import --jobs``, without a store: which records keep their order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from training_analytics.fileformats import _ONE
from training_analytics.partition import NO_KEY, partition_key, raw_partition_key, worker_of


def _line(record: dict[str, Any], **dumps: Any) -> bytes:
    return json.dumps(record, **dumps).encode()


def test_a_learners_events_in_a_course_share_a_key_whatever_the_kind() -> None:
    keys = {
        partition_key({"kind": "enrollment", "userId": "u1", "courseId": "c1"}),
        partition_key({"kind": "completion", "user_id": "u1", "course_id": "c1"}),
        partition_key({"kind": "module_start", "userId": "u1", "courseId": "c1", "moduleId": "m"}),
        partition_key({"kind": "module_completion", "userId": "u1", "courseId": "c1"}),
        partition_key({"kind": "progress", "progress": {"userId": "u1", "courseId": "c1"}}),
    }
    assert len(keys) == 1
    assert partition_key({"kind": "enrollment", "userId": "u1", "courseId": "c2"}) not in keys
    assert partition_key({"kind": "enrollment", "userId": "u2", "courseId": "c1"}) not in keys


def test_a_certificates_issue_and_status_changes_share_its_id() -> None:
    issued = partition_key(
        {"kind": "certification_issued", "certification": {"id": "cert-1", "userId": "u1"}}
    )
    assert issued == partition_key(
        {"kind": "certification_status", "certId": "cert-1", "newStatus": "claimed"}
    )
    assert issued == partition_key({"kind": "certification_status", "cert_id": "cert-1"})
    # Not the learner's key: a certificate's events read no learner key, and the other way.
    assert issued != partition_key({"kind": "enrollment", "userId": "u1", "courseId": "c1"})


def test_courses_keep_their_order_by_id_and_junk_gets_no_key() -> None:
    one = partition_key({"kind": "course", "course": {"id": "c1", "modules": [{"id": "m1"}]}})
    assert one == partition_key({"kind": "course", "course": {"id": "c1"}})
    assert one != partition_key({"kind": "course", "course": {"id": "c2"}})
    assert partition_key({"kind": "nonsense"}) == NO_KEY
    assert partition_key({}) == NO_KEY
    # The camelCase spelling wins over snake_case, as the models take it.
    assert partition_key(
        {"kind": "enrollment", "user_id": "a", "userId": "b", "courseId": "c"}
    ) == partition_key({"kind": "enrollment", "userId": "b", "courseId": "c"})


def test_raw_lines_give_the_decoded_key_or_say_they_cannot() -> None:
    enrolment = {"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": "2025-01-01Z"}
    assert raw_partition_key(_line(enrolment)) == partition_key(enrolment)
    spaced = _line(enrolment, indent=None, separators=(" , ", " : "))
    assert raw_partition_key(spaced) == partition_key(enrolment)
    progress = {"kind": "progress", "progress": {"userId": "u1", "courseId": "c1"}}
    assert raw_partition_key(_line(progress)) == partition_key(enrolment)
    # Cannot tell: an escape, a key twice (nested, or both spellings), a course's many ids,
    # a certificate whose course name has a language "id".
    assert raw_partition_key(_line({**enrolment, "note": "é"})) is None  # \u00e9
    assert raw_partition_key(_line({**enrolment, "extra": {"userId": "x"}})) is None
    assert raw_partition_key(_line({**enrolment, "user_id": "x"})) is None
    assert raw_partition_key(_line({"kind": "course", "course": {"id": "c1"}})) is None
    named = {
        "kind": "certification_issued",
        "certification": {"id": "cert-1", "courseName": {"id": "Kursus"}},
    }
    assert raw_partition_key(_line(named)) is None
    assert raw_partition_key(b'{"kind":"enrollment","userId":7,"courseId":"c"}') is None
    assert raw_partition_key(b"not json") is None


_IDS = st.lists(
    st.sampled_from(["a", "b", "-", '"', "\\", "é", " ", ":", "{", "}", '"id"', '"userId":"x"']),
    max_size=4,
).map("".join)
_EXTRA = st.dictionaries(
    st.sampled_from(["userId", "user_id", "courseId", "course_id", "id", "certId", "kind", "x"]),
    st.one_of(_IDS, st.dictionaries(st.sampled_from(["userId", "id", "courseId"]), _IDS)),
    max_size=2,
)


@st.composite
def _records(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            [
                "enrollment",
                "completion",
                "module_start",
                "module_completion",
                "progress",
                "certification_issued",
                "certification_status",
                "course",
                "other",
            ]
        )
    )
    body: dict[str, Any]
    if kind == "progress":
        body = {"progress": {"userId": draw(_IDS), "courseId": draw(_IDS), **draw(_EXTRA)}}
    elif kind == "certification_issued":
        body = {"certification": {"id": draw(_IDS), "userId": draw(_IDS), **draw(_EXTRA)}}
    elif kind == "certification_status":
        body = {draw(st.sampled_from(["certId", "cert_id"])): draw(_IDS)}
    elif kind == "course":
        body = {"course": {"id": draw(_IDS), "modules": [{"id": draw(_IDS)}]}}
    else:
        course_field = draw(st.sampled_from(["courseId", "course_id"]))
        body = {"userId": draw(_IDS), course_field: draw(_IDS)}
    record = {"kind": kind, **body}
    for name, value in draw(_EXTRA).items():
        record.setdefault(name, value)
    return record


@settings(max_examples=1000, deadline=None)
@given(record=_records(), spacing=st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :  ")]))
def test_the_raw_key_is_the_decoded_key_whenever_it_is_given(
    record: dict[str, Any], spacing: tuple[str, str]
) -> None:
    line = json.dumps(record, ensure_ascii=False, separators=spacing).encode()
    found = raw_partition_key(line)
    if found is not None:
        assert found == partition_key(json.loads(line)), line


def test_workers_are_chosen_stably_and_spread() -> None:
    keys = [
        partition_key({"kind": "enrollment", "userId": f"u{i}", "courseId": "c"})
        for i in range(300)
    ]
    chosen = [worker_of(key, 3) for key in keys]
    assert chosen == [worker_of(key, 3) for key in keys]
    assert {chosen.count(w) for w in range(3)} <= set(range(60, 141))


_NAMES = st.sampled_from(
    ["kind", "userId", "courseId", "certId", "progress", "certification", "newStatus"]
)
_VALUES = st.one_of(
    _IDS,
    st.sampled_from(["enrollment", "progress", "certification_status", "claimed"]),
    st.fixed_dictionaries({"id": _IDS}),
    st.fixed_dictionaries({"userId": _IDS, "courseId": _IDS}),
)


@settings(max_examples=1500, deadline=None)
@given(record=_records(), repeated=st.lists(st.tuples(_NAMES, _VALUES), min_size=1, max_size=3))
def test_a_key_given_twice_is_never_misread(
    record: dict[str, Any], repeated: list[tuple[str, Any]]
) -> None:
    # JSON objects can repeat a key (the last one counts); json.dumps never writes one. A
    # record that cannot apply may go to any worker: only valid ones must route right.
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))[:-1]
    for name, value in repeated:
        line += "," + json.dumps({name: value}, ensure_ascii=False, separators=(",", ":"))[1:-1]
    line += "}"
    found = raw_partition_key(line.encode())
    try:
        _ONE.validate_json(line)
    except ValidationError:
        return  # not a record that can apply (the last "progress" is not one): routed anywhere
    if found is not None:
        assert found == partition_key(json.loads(line)), line


@pytest.mark.parametrize(
    "line",
    [
        '{"kind":"enrollment","userId":"u","courseId":"c","kind":"certification_status",'
        '"certId":"x"}',
        '{"kind":"enrollment","userId":"u","courseId":"c","userId":"v"}',
        '{"kind":"enrollment","userId":"u","courseId":"c","courseId":"d"}',
        '{"kind":"progress","progress":{"userId":"u","courseId":"c"},'
        '"progress":{"userId":"v","courseId":"c"}}',
        '{"kind":"progress","progress":{"userId":"u","courseId":"c"},'
        '"progress":{"user_id":"v","course_id":"c"}}',
        '{"kind":"certification_status","certId":"a","certId":"b"}',
        '{"kind":"certification_issued","certification":{"id":"a"},"certification":{"id":"b"}}',
        '{"kind":"certification_issued","certification":{"id":"a","id":"b"}}',
    ],
)
def test_repeated_keys_in_the_usual_layouts(line: str) -> None:
    assert raw_partition_key(line.encode()) in (None, partition_key(json.loads(line)))
