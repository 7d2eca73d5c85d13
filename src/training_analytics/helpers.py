"""The seed's helper functions, with the seed's rounding.

JavaScript's ``Math.round`` rounds halves up (towards +infinity) where Python's ``round`` rounds
halves to even; :func:`js_round` keeps the seed's figures identical.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, TypeVar

from ._time import parse_day
from .errors import InvalidDateRangeError

T = TypeVar("T")

DEFAULT_MAX_RANGE_DAYS = 366

# parseFloat: optional leading whitespace, then the longest prefix that is a decimal number.
_LEADING_FLOAT = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", re.ASCII)


def js_round(value: float) -> int:
    """``Math.round``: halves round up."""
    return math.floor(value + 0.5)


def round_to(value: float, decimals: int) -> float:
    """``Math.round(value * 10**d) / 10**d``, the seed's way of rounding to decimals."""
    factor = 10.0**decimals
    return js_round(value * factor) / factor


def safe_parse_number(value: object, default_value: float = 0) -> float:
    """A number from a Redis value the way the seed reads it (``parseFloat``), else the default."""
    if value is None:
        return float(default_value)
    if isinstance(value, bool):
        return float(default_value)
    if isinstance(value, int | float):
        return float(default_value) if math.isnan(value) else float(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        match = _LEADING_FLOAT.match(value)
        return float(match.group(1)) if match else float(default_value)
    return float(default_value)


def safe_parse_json(value: str | bytes | None, default_value: T) -> Any | T:
    """Parsed JSON, or the default for an empty value or one that is not JSON."""
    if not value:
        return default_value
    try:
        return json.loads(value)
    except ValueError:
        return default_value


def get_date_range(
    start_date: date | str, end_date: date | str, *, max_days: int = DEFAULT_MAX_RANGE_DAYS
) -> list[str]:
    """Every ``YYYY-MM-DD`` from start to end inclusive.

    Unlike the seed (which returned ``[]``), a bad range is an error: dates that do not parse
    raise InvalidDateError, an end before the start or a range over ``max_days`` days raise
    InvalidDateRangeError.
    """
    start = parse_day(start_date, "start date")
    end = parse_day(end_date, "end date")
    if end < start:
        raise InvalidDateRangeError(f"end date {end} is before start date {start}")
    days = (end - start).days + 1
    if days > max_days:
        raise InvalidDateRangeError(
            f"range {start}..{end} has {days} days; the maximum is {max_days}"
        )
    return [(start + timedelta(days=i)).isoformat() for i in range(days)]


def calculate_percentage(numerator: float, denominator: float, decimals: int = 2) -> float:
    """``numerator / denominator`` in percent, rounded as the seed rounds; 0 if denominator is 0."""
    if denominator == 0:
        return 0
    return round_to(numerator / denominator * 100, decimals)


def get_localized_name(localized: Mapping[str, str] | None, fallback: str = "") -> str:
    """The display name of a localized string: English, then Spanish, then Portuguese."""
    if not localized:
        return fallback
    return localized.get("en") or localized.get("es") or localized.get("pt") or fallback
