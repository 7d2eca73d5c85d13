"""Timestamps and day buckets.

One grammar for timestamps, shared with ``lua/_prelude.lua`` (``parse_ts``): ``YYYY-MM-DD``
optionally followed by ``T`` or a space, ``HH:MM[:SS[.fraction]]`` and ``Z`` or an offset
``+HH:MM`` / ``+HHMM``. A date alone is midnight UTC (as JavaScript's ``Date`` reads it); a time
without an offset is taken as UTC. Python (``reindex``) and Lua (every write) must agree on this,
so derived figures rebuilt from base keys equal those maintained incrementally.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from .errors import InvalidDateError

_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$",
    re.ASCII,  # Lua's %d is ASCII only; other scripts' digits must not parse here either
)
_CANONICAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", re.ASCII)
# UTC timestamps with seconds and up to six decimals, what JavaScript (``toISOString``) and
# Python (pydantic, ``isoformat``) clients send: C's fromisoformat reads these as the grammar does.
_UTC_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def parse_timestamp_ms(value: str | None) -> int | None:
    """Epoch milliseconds of a stored timestamp, or ``None`` when it does not parse."""
    if not value:
        return None
    if _CANONICAL.match(value):
        # The stored form (every write normalises to it): C parses it, and checks the calendar.
        try:
            return (datetime.fromisoformat(value) - _EPOCH) // _ONE_MS
        except ValueError:
            return None
    match = _TIMESTAMP.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    if fraction:
        # Milliseconds, truncated like JavaScript's Date.
        ms += int((fraction[1:] + "00")[:3])
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        ms -= sign * (int(digits[:2]) * 60 + int(digits[2:])) * 60_000
    return ms


def to_iso(moment: datetime) -> str:
    """The JavaScript ``toISOString`` form the older system stores: ``2025-01-15T10:30:00.000Z``."""
    # isoformat() is implemented in C; its "+00:00" becomes the "Z" JavaScript writes.
    try:
        return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    except OverflowError:  # 0001-01-01T00:00+05:00 is in year 0 in UTC
        raise InvalidDateError(f"{moment} is outside the years 1 to 9999 (UTC)") from None


def epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch (exact: a timestamp's microseconds fit a double)."""
    return round(moment.timestamp() * 1_000_000) // 1000


def instant_ms(value: datetime | str, what: str = "timestamp") -> int:
    """Epoch milliseconds of a timestamp, by :func:`parse_instant`'s rules.

    UTC forms with seconds (the stored ``2025-01-15T10:30:00.000Z``, and ``...:00Z`` or
    ``...:00.123456Z`` as Python clients write them) take a C parser and no regex groups:
    ingest parses one timestamp per event. Fractions are truncated to the millisecond, as the
    grammar reads them.
    """
    if type(value) is datetime:
        if value.tzinfo is not UTC and value.utcoffset() is None:
            raise InvalidDateError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
        # Exact integer arithmetic, floored to the millisecond like epoch_ms.
        return (value - _EPOCH) // _ONE_MS
    if type(value) is str and _UTC_SECONDS.match(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass  # not a calendar date: parse_instant words the error
        else:
            # Exact integers, floored: the whole seconds plus the fraction's milliseconds.
            return (moment - _EPOCH) // _ONE_MS
    return epoch_ms(parse_instant(value, what))


def from_epoch_ms(ms: int, what: str = "timestamp") -> datetime:
    """The UTC datetime of epoch milliseconds; InvalidDateError outside the years 1-9999."""
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise InvalidDateError(f"{what} is outside the years 1 to 9999 (UTC)") from None


#: The widest UTC offset in use (Kiribati, +14:00; the lowest is -12:00). Larger ones, or minutes
#: past 59, are typing mistakes that would store a wrong instant.
MAX_OFFSET_MINUTES = 14 * 60


def _check_offset(offset: str | None, value: str, what: str) -> None:
    if not offset or offset == "Z":
        return
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if minutes > 59 or hours * 60 + minutes > MAX_OFFSET_MINUTES:
        raise InvalidDateError(
            f"{what} {value!r} has UTC offset {offset}; offsets run from -14:00 to +14:00"
        )


def parse_instant(value: datetime | str, what: str = "timestamp") -> datetime:
    """An aware datetime from a datetime or an ISO-8601 string; else InvalidDateError."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise InvalidDateError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
        return value
    if isinstance(value, str):
        text = value.strip()
        match = _TIMESTAMP.match(text)
        ms = parse_timestamp_ms(text)
        if match is None or ms is None:
            raise InvalidDateError(f"{what} is not an ISO-8601 timestamp: {value!r}")
        if match.group(4) is not None and match.group(8) is None:
            # Stored values without a zone are read as UTC, but a caller's must say which zone.
            raise InvalidDateError(f"{what} {value!r} has no time zone; add Z or an offset")
        _check_offset(match.group(8), value, what)
        return from_epoch_ms(ms, f"{what} {value!r}")
    raise InvalidDateError(f"{what} must be a datetime or an ISO-8601 string, got {value!r}")


def normalize_timestamp(value: datetime | str, what: str) -> str:
    """Validate a timestamp field and return it in the stored ``toISOString`` form."""
    if isinstance(value, str) and _CANONICAL.match(value):
        # Already in the stored form (the usual case on bulk ingest): only the date needs checking.
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    return to_iso(parse_instant(value, what))


def parse_day(value: date | datetime | str, what: str = "date") -> date:
    """A calendar day from a ``date``, ``YYYY-MM-DD`` or an ISO-8601 timestamp string."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text[:10]) if len(text) >= 10 else date.fromisoformat(text)
        except ValueError:
            pass
        raise InvalidDateError(f"{what} is not a date (YYYY-MM-DD): {value!r}")
    raise InvalidDateError(f"{what} must be a date or a YYYY-MM-DD string, got {value!r}")


def day_bucket(moment: datetime, tz: ZoneInfo) -> str:
    """The ``YYYY-MM-DD`` day an event falls on in the configured time zone."""
    try:
        return moment.astimezone(tz).date().isoformat()
    except OverflowError:
        # 9999-12-31T23:00Z is in year 10000 in Tokyo; 0001-01-01T01:00Z in year 0 in New York.
        raise InvalidDateError(
            f"{to_iso(moment)} falls outside the years 1 to 9999 in time zone {tz.key}"
        ) from None


def day_start_ms(day: date, tz: ZoneInfo) -> int:
    return epoch_ms(datetime(day.year, day.month, day.day, tzinfo=tz))


def day_span_ms(first: date, last: date, tz: ZoneInfo) -> tuple[int, int]:
    """Epoch ms of the start of ``first`` and the end (inclusive) of ``last`` in ``tz``;
    InvalidDateError when a bound cannot be represented (a range ending 9999-12-31)."""
    try:
        return day_start_ms(first, tz), day_start_ms(last + timedelta(days=1), tz) - 1
    except (OverflowError, ValueError):
        raise InvalidDateError(
            f"the range {first}..{last} reaches past the years 1 to 9999 in time zone {tz.key}"
        ) from None
