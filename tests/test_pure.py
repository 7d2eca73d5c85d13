"""Pure parts: key names, id checks, the seed's helpers and rounding, timestamp grammar."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import training_analytics as ta
from training_analytics._codec import _text_map_json
from training_analytics._time import instant_ms, parse_timestamp_ms, to_iso
from training_analytics.helpers import js_round, round_to


def test_keys_match_the_seed_layout() -> None:
    k = ta.TrainingKeys()
    assert k.course_enrollments("c1") == "training:enrollments:c1"
    assert k.course_completions("c1") == "training:completions:c1"
    assert k.module_enrollments("c1", "m1") == "training:module:enrolled:c1:m1"
    assert k.module_completions("c1", "m1") == "training:module:completed:c1:m1"
    assert k.user_course_progress("u1", "c1") == "training:progress:u1:c1"
    assert k.enrollment_by_date("2025-01-02") == "training:enrollment:date:2025-01-02"
    assert k.completion_by_date("2025-01-02") == "training:completion:date:2025-01-02"
    assert k.enrollment_timeseries() == "training:enrollment:timeseries"
    assert k.completion_timeseries() == "training:completion:timeseries"
    assert k.all_training_certifications() == "training:certifications:all"
    assert k.training_certification("x") == "training:certification:x"
    assert k.certifications_by_status("claimed") == "training:certifications:status:claimed"
    assert k.course_analytics_cache("c1") == "cache:training:analytics:course:c1"
    assert k.overview_metrics_cache() == "cache:training:analytics:overview"
    assert k.credential_analytics_cache() == "cache:training:analytics:credentials"
    assert k.training_course("c1") == "training:course:c1"
    assert k.all_training_courses() == "training:courses:all"
    assert k.published_training_courses() == "training:courses:published"
    assert k.training_courses_by_category("sales") == "training:courses:by-category:sales"
    assert ta.CACHE_TTL == {"ANALYTICS": 300, "OVERVIEW": 600, "CREDENTIALS": 300}


def test_prefix_namespaces_every_key() -> None:
    k = ta.TrainingKeys("tenant-a:")
    assert k.course_enrollments("c1") == "tenant-a:training:enrollments:c1"
    assert k.overview_metrics_cache() == "tenant-a:cache:training:analytics:overview"
    assert k.course_stats("c1").startswith("tenant-a:training:agg:")


@pytest.mark.parametrize(
    "bad", ["", "a:b", "a{b}", "a b", "a\tb", "a*", "a?", "[a]", "a\\b", "x" * 201, "a\nb"]
)
def test_ids_that_would_break_a_key_are_refused(bad: str) -> None:
    with pytest.raises(ta.InvalidIdError):
        ta.TrainingKeys().course_enrollments(bad)


def test_ids_from_the_older_system_are_accepted() -> None:
    # The seed's generateId(): `${Date.now()}-${base64url}`, plus e-mail-like and UUID ids.
    for good in ["1736935800000-aB3_x-9Q", "ana@example.com", "0b9c6f2e-8a1d-4c55-9e1b-2f3a"]:
        assert ta.TrainingKeys().user_course_progress(good, "c1").endswith(f"{good}:c1")


def test_js_rounding_rounds_halves_up() -> None:
    assert js_round(2.5) == 3
    assert js_round(-2.5) == -2
    assert round_to(0.125, 2) == 0.13
    assert ta.calculate_percentage(1, 3) == 33.33
    assert ta.calculate_percentage(2, 3) == 66.67
    assert ta.calculate_percentage(5, 0) == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 0),
        ("", 0),
        ("85", 85),
        ("85.5abc", 85.5),
        ("  7", 7),
        ("abc", 0),
        (12, 12),
        (".5", 0.5),
    ],
)
def test_safe_parse_number_reads_like_parse_float(value: object, expected: float) -> None:
    assert ta.safe_parse_number(value) == expected


def test_safe_parse_json_falls_back() -> None:
    assert ta.safe_parse_json('{"en": "x"}', {}) == {"en": "x"}
    assert ta.safe_parse_json("not json", {"en": ""}) == {"en": ""}
    assert ta.safe_parse_json(None, []) == []


def test_localized_name_prefers_en_then_es_then_pt() -> None:
    assert ta.get_localized_name({"es": "Hola", "en": "Hello"}) == "Hello"
    assert ta.get_localized_name({"pt": "Olá", "es": "Hola"}) == "Hola"
    assert ta.get_localized_name({"pt": "Olá"}) == "Olá"
    assert ta.get_localized_name({}, "Module 1") == "Module 1"
    assert ta.get_localized_name(None, "x") == "x"


def test_date_range_is_inclusive_and_checked() -> None:
    assert ta.get_date_range("2025-02-27", "2025-03-01") == [
        "2025-02-27",
        "2025-02-28",
        "2025-03-01",
    ]
    assert ta.get_date_range(date(2024, 2, 28), "2024-03-01T10:00:00Z") == [
        "2024-02-28",
        "2024-02-29",
        "2024-03-01",
    ]
    with pytest.raises(ta.InvalidDateRangeError, match="before"):
        ta.get_date_range("2025-03-02", "2025-03-01")
    with pytest.raises(ta.InvalidDateRangeError, match="maximum is 366"):
        ta.get_date_range("2024-01-01", "2025-01-01")
    assert len(ta.get_date_range("2024-01-01", "2024-12-31")) == 366
    with pytest.raises(ta.InvalidDateRangeError):
        ta.get_date_range("2025-01-01", "2025-01-10", max_days=7)
    with pytest.raises(ta.InvalidDateError):
        ta.get_date_range("2025-13-01", "2025-12-31")
    with pytest.raises(ta.InvalidDateError):
        ta.get_date_range("yesterday", "2025-12-31")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-15T10:30:00.000Z", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
        ("2025-01-15T10:30:00Z", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
        ("2025-01-15T10:30:00.123456+02:00", datetime(2025, 1, 15, 8, 30, 0, 123000, tzinfo=UTC)),
        ("2025-01-15 10:30", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
        ("2025-01-15", datetime(2025, 1, 15, tzinfo=UTC)),
        ("2024-02-29T23:59:59-0130", datetime(2024, 3, 1, 1, 29, 59, tzinfo=UTC)),
    ],
)
def test_timestamp_grammar(text: str, expected: datetime) -> None:
    ms = parse_timestamp_ms(text)
    assert ms is not None
    assert ms == int(expected.timestamp() * 1000)


@pytest.mark.parametrize(
    "text", ["", "2025-02-30", "2025-1-5", "2025-01-15T25:00", "2025-01-15T10:30:00 Z", "tomorrow"]
)
def test_unparseable_timestamps(text: str) -> None:
    assert parse_timestamp_ms(text) is None


@given(
    moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    decimals=st.integers(min_value=0, max_value=6),
)
def test_utc_timestamps_take_the_fast_path_to_the_grammars_answer(
    moment: datetime, decimals: int
) -> None:
    """``instant_ms`` reads ``...:SS[.f{1,6}]Z`` with fromisoformat: the same milliseconds as
    the grammar Lua shares (fractions truncated, before 1970 too)."""
    m = moment
    fraction = "." + f"{m.microsecond:06d}"[:decimals] if decimals else ""
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    text += fraction + "Z"
    assert instant_ms(text) == parse_timestamp_ms(text)


@pytest.mark.parametrize("text", ["2025-02-30T10:00:00Z", "0000-01-01T00:00:00Z"])
def test_impossible_utc_timestamps_are_refused(text: str) -> None:
    with pytest.raises(ta.InvalidDateError):
        instant_ms(text)


def test_to_iso_is_the_seed_format() -> None:
    assert (
        to_iso(datetime(2025, 1, 15, 10, 30, 0, 123999, tzinfo=UTC)) == "2025-01-15T10:30:00.123Z"
    )


@given(st.dictionaries(st.text(), st.text()))
def test_a_localized_name_is_stored_as_json_dumps_writes_it(names: dict[str, str]) -> None:
    # The faster serialiser must write the same bytes the older system's readers get today.
    assert _text_map_json(names) == json.dumps(names, separators=(",", ":"), ensure_ascii=False)


def test_a_localized_name_with_a_lone_surrogate_is_written_as_json_dumps_writes_it() -> None:
    # The write path refuses it afterwards (check_encodable); the text must not fail first.
    assert _text_map_json({"en": "\ud800"}) == '{"en":"\ud800"}'
