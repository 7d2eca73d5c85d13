"""What every operation needs besides its arguments: key names, time zone, clock, limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ._time import parse_instant
from .helpers import DEFAULT_MAX_RANGE_DAYS
from .keys import TrainingKeys


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Context:
    keys: TrainingKeys = field(default_factory=TrainingKeys)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    clock: Callable[[], datetime] = utc_now
    max_range_days: int = DEFAULT_MAX_RANGE_DAYS
    memo: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    """What encoders derive from the fields above (key groups, day buckets), kept between calls."""

    def now(self) -> datetime:
        return parse_instant(self.clock(), "clock()")

    def moment(self, at: datetime | str | None, what: str = "at") -> datetime:
        """``at`` as an aware datetime; the clock's time when it is None."""
        return self.now() if at is None else parse_instant(at, what)
