"""A daily series with its summary (total, mean per day, peak day): what a chart shows."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

from ._context import Context
from ._protocol import Op
from ._time import parse_day
from .errors import InvalidDateRangeError, InvalidInputError
from .helpers import round_to
from .timeseries import get_completion_time_series, get_enrollment_time_series
from .types import SeriesReport, SeriesSummary

SERIES_KINDS: Final = ("enrollments", "completions")
DEFAULT_SERIES_DAYS: Final = 30


def get_series_report(
    ctx: Context,
    kind: str,
    start_date: date | str | None = None,
    end_date: date | str | None = None,
    course_id: str | None = None,
) -> Op[SeriesReport]:
    """Daily ``enrollments`` or ``completions``; the range defaults to the last 30 days ending
    today in the configured time zone (a given end alone: the 30 days ending then)."""
    if kind not in SERIES_KINDS:
        raise InvalidInputError(f"unknown series {kind!r}; use enrollments or completions")
    if end_date is None:
        end_date = ctx.now().astimezone(ctx.tz).date()
    if start_date is None:
        try:
            start_date = parse_day(end_date, "end date") - timedelta(days=DEFAULT_SERIES_DAYS - 1)
        except OverflowError as exc:
            raise InvalidDateRangeError(
                f"the {DEFAULT_SERIES_DAYS} days ending {end_date} start before year 1"
            ) from exc
    read = get_enrollment_time_series if kind == "enrollments" else get_completion_time_series
    points = yield from read(ctx, start_date, end_date, course_id)
    total = sum(p.count for p in points)
    peak = max(points, key=lambda p: p.count)  # the first of equal counts
    return SeriesReport(
        points=points,
        summary=SeriesSummary(
            total=total,
            average=round_to(total / len(points), 2),
            peak=peak.count,
            peak_date=peak.date if peak.count else None,
        ),
    )
