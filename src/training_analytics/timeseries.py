"""Day-by-day enrolments and completions (the seed's timeseries.ts).

Global series read the seed's day counters (``training:enrollment:date:{day}``), one MGET for the
whole range (on the cluster layout, which has none: the sum of every course's). ``course_id=``
reads the course's own day counters, one HMGET. Days are calendar
days in the configured time zone; ranges are checked (see ``get_date_range``).
"""

from __future__ import annotations

from collections import Counter
from datetime import date

from ._context import Context
from ._index import course_marker, ensure_fresh, require_index
from ._protocol import Op, batch, cmd, gather, single
from ._time import day_bucket, day_span_ms, from_epoch_ms, parse_day
from .helpers import get_date_range, safe_parse_number
from .types import TimeSeriesDataPoint


def _count(value: str | None) -> int:
    if not value:
        return 0
    try:
        return int(value)  # what INCR and HINCRBY store
    except ValueError:
        return int(safe_parse_number(value))


def _points(dates: list[str], values: list[str | None]) -> list[TimeSeriesDataPoint]:
    return [
        TimeSeriesDataPoint(date=d, count=_count(v)) for d, v in zip(dates, values, strict=True)
    ]


def _daily(
    ctx: Context, series: str, start: date | str, end: date | str, course_id: str | None
) -> Op[list[TimeSeriesDataPoint]]:
    k = ctx.keys
    dates = get_date_range(start, end, max_days=ctx.max_range_days)
    # Every day of the range must be a span of time in the zone (not so 9999-12-31 in New York).
    day_span_ms(parse_day(start), parse_day(end), ctx.tz)
    if course_id is not None:
        values = yield from _course_days(ctx, series, dates, course_id)
        return _points(dates, values)
    if k.cluster:
        return (yield from _summed_days(ctx, series, dates))
    by_date = k.enrollment_by_date if series == "enrollment" else k.completion_by_date
    values = yield from single("MGET", *(by_date(d) for d in dates))
    return _points(dates, values)


def _course_days(
    ctx: Context, series: str, dates: list[str], course_id: str
) -> Op[list[str | None]]:
    """One course's day counters for ``dates`` (one round trip, plus one when its marker is
    missing or its set's recorded size differs). The course's marker: the store's on one
    server, the course's own on the cluster layout."""
    k = ctx.keys
    per_course = (
        k.course_enrollments_by_day if series == "enrollment" else k.course_completions_by_day
    )
    learners = k.course_enrollments if series == "enrollment" else k.course_completions
    indexed, values, actual, recorded = yield batch(
        cmd("EXISTS", course_marker(ctx, course_id)),
        cmd("HMGET", per_course(course_id), *dates),
        cmd("SCARD", learners(course_id)),
        cmd("HGET", k.course_stats(course_id), f"set:{series}s"),
    )
    if not indexed:
        yield from require_index(ctx, course_id)
    yield from ensure_fresh(
        f"course {course_id}",
        k.course_stats(course_id),
        [(f"{series}s", learners(course_id), actual, recorded)],
    )
    return list(values)


def _summed_days(ctx: Context, series: str, dates: list[str]) -> Op[list[TimeSeriesDataPoint]]:
    """The cluster layout's global series: the sum of every registered course's day counters.

    The registry (one slot) first, then every course's read side by side (``gather``: one
    batch, which the executor sends as one pipeline per node): O(nodes) round trips and
    O(courses x days) values, nothing per learner. Each course is checked as a read of that
    course alone is: its own marker (a course with data but no marker, copied from an
    unindexed store, raises NotIndexedError; a registered course without data counts zero)
    and the recorded size of its set (StaleIndexError)."""
    courses = yield from single("SMEMBERS", ctx.keys.course_registry())
    parts = yield from gather([_course_days(ctx, series, dates, c) for c in sorted(courses)])
    totals = [0] * len(dates)
    for values in parts:
        for i, value in enumerate(values):
            if value:  # most courses have no events most days
                totals[i] += _count(value)
    return [TimeSeriesDataPoint(date=d, count=n) for d, n in zip(dates, totals, strict=True)]


def get_daily_enrollment_counts(
    ctx: Context, start_date: date | str, end_date: date | str, course_id: str | None = None
) -> Op[list[TimeSeriesDataPoint]]:
    """New enrolments per day, every day of the range (zeros included)."""
    return (yield from _daily(ctx, "enrollment", start_date, end_date, course_id))


def get_daily_completion_counts(
    ctx: Context, start_date: date | str, end_date: date | str, course_id: str | None = None
) -> Op[list[TimeSeriesDataPoint]]:
    return (yield from _daily(ctx, "completion", start_date, end_date, course_id))


def _with_fallback(
    ctx: Context, series: str, start: date | str, end: date | str, course_id: str | None
) -> Op[list[TimeSeriesDataPoint]]:
    points = yield from _daily(ctx, series, start, end, course_id)
    # No fallback on the cluster layout: it has no global series, and each course's day
    # counters are written with its series in one call, so its series has nothing they lack.
    if course_id is not None or ctx.keys.cluster or any(p.count for p in points):
        return points
    # The seed's fallback: a store with event entries but no day counters (written by other
    # tooling) is counted from the sorted set, bounded to the range.
    k = ctx.keys
    key = k.enrollment_timeseries() if series == "enrollment" else k.completion_timeseries()
    low, high = day_span_ms(parse_day(start), parse_day(end), ctx.tz)
    members = yield from single("ZRANGEBYSCORE", key, low, high)
    counts: Counter[str] = Counter()
    for member in members:
        # Members are "{epochMs}:{userId}:{courseId}"; the seed read the time from the member.
        stamp = member.partition(":")[0]
        if stamp.isdigit() and int(stamp) > 0:
            counts[day_bucket(from_epoch_ms(int(stamp)), ctx.tz)] += 1
    return [TimeSeriesDataPoint(date=p.date, count=counts.get(p.date, 0)) for p in points]


def get_enrollment_time_series(
    ctx: Context, start_date: date | str, end_date: date | str, course_id: str | None = None
) -> Op[list[TimeSeriesDataPoint]]:
    """Daily enrolments; falls back to the event sorted set when no day counter has data."""
    return (yield from _with_fallback(ctx, "enrollment", start_date, end_date, course_id))


def get_completion_time_series(
    ctx: Context, start_date: date | str, end_date: date | str, course_id: str | None = None
) -> Op[list[TimeSeriesDataPoint]]:
    return (yield from _with_fallback(ctx, "completion", start_date, end_date, course_id))
