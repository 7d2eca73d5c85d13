"""A faithful model of the older TypeScript system's reads and writes: the benchmarks' baseline.

Used nowhere but in the benchmarks. Each method issues the commands the seed's function issued,
in the same shape (what it sent in one pipeline is one pipeline here, what it awaited one by one
is one round trip each), and computes its figures the way the seed did, in Python, with
JavaScript's rounding (``Math.round`` rounds halves up) and ``parseFloat`` / ``Date`` parsing.

Known differences from this library, which the benchmark data avoids (see ``data.py``): the seed
counts a re-enrolment twice in its day counters and series, and its ``pending`` is total minus
claimed, so it counts expired and revoked certificates as pending.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import redis

from ._redis import command, queue
from .data import DAY_MS, utc_day

_LEADING_FLOAT = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_MS_PER_HOUR = 3_600_000


def math_round(value: float) -> int:
    """JavaScript ``Math.round``: halves go up."""
    return math.floor(value + 0.5)


def round_decimals(value: float, decimals: int) -> float:
    factor = 10.0**decimals
    return math_round(value * factor) / factor


def percentage(numerator: float, denominator: float) -> float:
    """The seed's ``calculatePercentage``: 2 decimals, 0 for an empty denominator."""
    return round_decimals(numerator / denominator * 100, 2) if denominator else 0.0


def parse_float(value: str | None) -> float:
    """``parseFloat`` with the seed's ``safeParseNumber`` fallback of 0."""
    match = _LEADING_FLOAT.match(value or "")
    return float(match.group(1)) if match else 0.0


def parse_date_ms(value: str | None) -> float | None:
    """``new Date(value).getTime()``, None where JavaScript gives NaN (empty or malformed)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.timestamp() * 1000


@dataclass(frozen=True, slots=True)
class CourseFigures:
    """The answer of getCourseDetailedAnalytics, in a form all three systems produce."""

    enrollments: int
    completions: int
    completion_rate: float
    average_score: int
    average_time_to_complete: float
    dropoff: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class CredentialFigures:
    """The answer of getCredentialClaimAnalytics."""

    total_issued: int
    total_claimed: int
    claim_rate: float
    average_claim_time_hours: float
    pending: int
    expiring_in_30_days: int


@dataclass(frozen=True, slots=True)
class OverviewFigures:
    """The answer of getTrainingOverviewMetrics."""

    total_courses: int
    published_courses: int
    draft_courses: int
    total_enrollments: int
    average_completion_rate: float
    total_certifications: int


def dropoff(started: int, completed: int) -> float:
    return percentage(started - completed, started) if started > 0 else 0.0


def average_completion(rates: list[float]) -> float:
    return round_decimals(sum(rates) / len(rates), 1) if rates else 0.0


class SeedModel:
    """The seed's algorithms on a redis-py client (``decode_responses=True``).

    ``prefix`` exists only so a benchmark can run the seed's writes next to the library's in one
    server and compare the keys each left behind; the seed itself had none.
    """

    def __init__(self, client: redis.Redis, *, now_ms: int, prefix: str = "") -> None:
        self.client = client
        self.now_ms = now_ms
        self.p = prefix

    def _call(self, *args: Any) -> Any:
        return command(self.client, *args)

    # --- reads ------------------------------------------------------------------------------

    def course_detailed_analytics(self, course_id: str) -> CourseFigures:
        """SCARDs, SMEMBERS, one HGETALL per enrolled learner (one pipeline), then per module."""
        p = self.p
        pipe = self.client.pipeline(transaction=False)
        queue(pipe, "SCARD", f"{p}training:enrollments:{course_id}")
        queue(pipe, "SCARD", f"{p}training:completions:{course_id}")
        enrollments, completions = (int(v) for v in pipe.execute())
        users: list[str] = list(self._call("SMEMBERS", f"{p}training:enrollments:{course_id}"))
        pipe = self.client.pipeline(transaction=False)
        for user in users:
            queue(pipe, "HGETALL", f"{p}training:progress:{user}:{course_id}")
        progress: list[dict[str, str]] = pipe.execute()
        scores: list[float] = []
        hours: list[float] = []
        for record in progress:
            if not record:
                continue
            score = parse_float(record.get("overallScore"))
            if score > 0:
                scores.append(score)
            started = parse_date_ms(record.get("startedAt"))
            completed = parse_date_ms(record.get("completedAt"))
            if started is not None and completed is not None and completed > started:
                hours.append((completed - started) / _MS_PER_HOUR)
        average_score = math_round(sum(scores) / len(scores)) if scores else 0
        average_time = round_decimals(sum(hours) / len(hours), 1) if hours else 0.0
        # getCourseModuleDropoffRates: the course record, then two SCARDs per module.
        course = self._call("HGETALL", f"{p}training:course:{course_id}")
        modules: list[dict[str, Any]] = json.loads(course.get("modules") or "[]")
        pipe = self.client.pipeline(transaction=False)
        for module in modules:
            queue(pipe, "SCARD", f"{p}training:module:enrolled:{course_id}:{module['id']}")
            queue(pipe, "SCARD", f"{p}training:module:completed:{course_id}:{module['id']}")
        counts = [int(v) for v in pipe.execute()] if modules else []
        return CourseFigures(
            enrollments=enrollments,
            completions=completions,
            completion_rate=percentage(completions, enrollments),
            average_score=average_score,
            average_time_to_complete=average_time,
            dropoff=tuple(
                (str(m["id"]), dropoff(counts[2 * i], counts[2 * i + 1]))
                for i, m in enumerate(modules)
            ),
        )

    def credential_claim_analytics(self) -> CredentialFigures:
        """SMEMBERS of every certification id, then one HGETALL each (one pipeline)."""
        ids: list[str] = list(self._call("SMEMBERS", f"{self.p}training:certifications:all"))
        pipe = self.client.pipeline(transaction=False)
        for cert_id in ids:
            queue(pipe, "HGETALL", f"{self.p}training:certification:{cert_id}")
        records = [r for r in pipe.execute() if r]
        claimed = 0
        claim_hours: list[float] = []
        expiring = 0
        horizon = self.now_ms + 30 * DAY_MS
        for record in records:
            claimed_at = record.get("claimedAt") or ""
            if record.get("status") == "claimed" or claimed_at:
                claimed += 1
                issued_ms = parse_date_ms(record.get("issuedAt"))
                claimed_ms = parse_date_ms(claimed_at)
                if issued_ms is not None and claimed_ms is not None and claimed_ms > issued_ms:
                    claim_hours.append((claimed_ms - issued_ms) / _MS_PER_HOUR)
            expires_ms = parse_date_ms(record.get("expiresAt"))
            if expires_ms is not None and self.now_ms < expires_ms <= horizon:
                expiring += 1
        total = len(records)
        return CredentialFigures(
            total_issued=total,
            total_claimed=claimed,
            claim_rate=percentage(claimed, total),
            average_claim_time_hours=(
                round_decimals(sum(claim_hours) / len(claim_hours), 1) if claim_hours else 0.0
            ),
            pending=total - claimed,
            expiring_in_30_days=expiring,
        )

    def overview_metrics(self) -> OverviewFigures:
        """Every course record (getAllTrainingCourses), two SCARDs per course, the cert count."""
        p = self.p
        ids: list[str] = list(self._call("ZRANGE", f"{p}training:courses:all", 0, -1))
        pipe = self.client.pipeline(transaction=False)
        for course_id in ids:
            queue(pipe, "HGETALL", f"{p}training:course:{course_id}")
        courses = pipe.execute() if ids else []
        pipe = self.client.pipeline(transaction=False)
        for course_id in ids:
            queue(pipe, "SCARD", f"{p}training:enrollments:{course_id}")
            queue(pipe, "SCARD", f"{p}training:completions:{course_id}")
        counts = [int(v) for v in pipe.execute()] if ids else []
        certifications = int(self._call("SCARD", f"{p}training:certifications:all"))
        published = 0
        rates: list[float] = []
        for i, course in enumerate(courses):
            if course.get("isPublished") != "true":
                continue
            published += 1
            enrolled, completed = counts[2 * i], counts[2 * i + 1]
            if enrolled > 0:
                rates.append(percentage(completed, enrolled))
        return OverviewFigures(
            total_courses=len(ids),
            published_courses=published,
            draft_courses=len(ids) - published,
            total_enrollments=sum(counts[0::2]),
            average_completion_rate=average_completion(rates),
            total_certifications=certifications,
        )

    def daily_enrollment_counts(self, start: date, end: date) -> list[tuple[str, int]]:
        """One GET per day of the range, issued together (one pipeline)."""
        days = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
        pipe = self.client.pipeline(transaction=False)
        for day in days:
            queue(pipe, "GET", f"{self.p}training:enrollment:date:{day}")
        values = pipe.execute()
        return [(day, int(parse_float(v))) for day, v in zip(days, values, strict=True)]

    # --- writes -----------------------------------------------------------------------------

    def record_enrollment(self, user_id: str, course_id: str, at_ms: int) -> None:
        """recordEnrollment: SADD, INCR, ZADD, then the two cache DELs; five round trips.

        The seed issued the first three without waiting in between and the DELs after them;
        modelled, as its code reads, as separate commands, none of them atomic with the others.
        """
        p = self.p
        self._call("SADD", f"{p}training:enrollments:{course_id}", user_id)
        self._call("INCR", f"{p}training:enrollment:date:{utc_day(at_ms)}")
        self._call(
            "ZADD", f"{p}training:enrollment:timeseries", at_ms, f"{at_ms}:{user_id}:{course_id}"
        )
        self._call("DEL", f"{p}cache:training:analytics:course:{course_id}")
        self._call("DEL", f"{p}cache:training:analytics:overview")
