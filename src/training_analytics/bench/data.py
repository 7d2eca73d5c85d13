"""Deterministic benchmark data, and a fast loader that writes it in the older system's layout.

The data set is generated from a fixed random seed, relative to a fixed instant ``NOW`` (the
clock of every facade, seed model and SQL query in a run), so that "expiring in 30 days" and the
day series are the same question for all three systems however long the run takes.

It is chosen so that the older system and this library must agree (see docs/performance.md):
every learner enrols once (the older system counted a re-enrolment twice), completions imply
enrolment and module completions imply module starts, and certificates are issued or claimed
with an expiry in the future (the older system's "pending" counted expired and revoked ones).

Loading a million learners one call at a time would take longer than the benchmark itself, so
:func:`load_seed_layout` writes the final state of the older system's keys directly (sets,
sorted sets and day counters with many members per command, one HSET per progress hash, all
pipelined); the keys and values are the ones its write path leaves behind. The library then
builds its derived keys with ``reindex``, which is exactly how a store the older system wrote
becomes fast.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import redis

from ._redis import queue

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
DAY_MS = 86_400_000
MODULES: tuple[str, ...] = ("m1", "m2", "m3", "m4")
PIPELINE_CHUNK = 2000


@cache
def _day_name(day_number: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day_number * 86_400))


def iso(ms: int) -> str:
    """JavaScript's ``Date.prototype.toISOString`` of epoch milliseconds (what the seed stores)."""
    # Arithmetic plus a cached day name: strftime per timestamp dominated loading a million.
    day, rest = divmod(ms, DAY_MS)
    seconds, milli = divmod(rest, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_day_name(day)}T{hours:02d}:{minutes:02d}:{seconds:02d}.{milli:03d}Z"


def utc_day(ms: int) -> str:
    return _day_name(ms // DAY_MS)


@dataclass(frozen=True, slots=True)
class Learner:
    """One learner's history in one course."""

    user_id: str
    course_id: str
    enrolled_ms: int
    started_ms: int | None  # first module start (progress startedAt), None if none started
    modules_started: int  # the first n modules of MODULES were started ...
    modules_completed: int  # ... and the first m (m <= n) completed
    completed_ms: int | None  # course completion, None if not completed
    score: int  # overallScore; 0 means "no score" for the averages
    minutes: int  # totalTimeSpentMinutes

    @property
    def status(self) -> str:
        if self.completed_ms is not None:
            return "completed"
        return "in_progress" if self.modules_started else "not_started"

    def module_progress(self) -> list[dict[str, Any]]:
        """The progress hash's ``moduleProgress`` entries, in the seed's field order."""
        entries: list[dict[str, Any]] = []
        base = self.started_ms or self.enrolled_ms
        for i in range(self.modules_started):
            start = base + i * 600_000
            entry: dict[str, Any] = {"moduleId": MODULES[i]}
            if i < self.modules_completed:
                entry["status"] = "completed"
                entry["score"] = 60 + (self.score + 7 * i) % 41
                entry["startedAt"] = iso(start)
                entry["completedAt"] = iso(start + 300_000)
            else:
                entry["status"] = "in_progress"
                entry["startedAt"] = iso(start)
            entries.append(entry)
        return entries

    def progress(self) -> dict[str, Any]:
        """The learner's progress as the seed's EnhancedTrainingProgress JSON."""
        last = self.completed_ms or self.started_ms or self.enrolled_ms
        return {
            "userId": self.user_id,
            "courseId": self.course_id,
            "status": self.status,
            "moduleProgress": self.module_progress(),
            "overallScore": self.score,
            "startedAt": iso(self.started_ms) if self.started_ms is not None else "",
            "completedAt": iso(self.completed_ms) if self.completed_ms is not None else None,
            "lastAccessedAt": iso(last),
            "totalTimeSpentMinutes": self.minutes,
        }

    def progress_fields(self) -> dict[str, str]:
        """The progress hash exactly as the seed's ``saveUserCourseProgress`` stores it."""
        last = self.completed_ms or self.started_ms or self.enrolled_ms
        return {
            "status": self.status,
            "moduleProgress": json.dumps(self.module_progress(), separators=(",", ":")),
            "overallScore": str(self.score),
            "startedAt": iso(self.started_ms) if self.started_ms is not None else "",
            "completedAt": iso(self.completed_ms) if self.completed_ms is not None else "",
            "lastAccessedAt": iso(last),
            "totalTimeSpentMinutes": str(self.minutes),
            "certificateId": "",
            "certificateIssuedAt": "",
        }


def learners(course_id: str, count: int, *, seed: int = 1, user_prefix: str = "u") -> list[Learner]:
    """``count`` distinct learners of ``course_id``, enrolled over the 365 days before NOW."""
    rng = random.Random(f"{seed}:{course_id}")
    out: list[Learner] = []
    for i in range(count):
        enrolled = NOW_MS - rng.randrange(1_000, 364 * DAY_MS)
        completed = rng.random() < 0.55
        if completed:
            n_started = n_done = len(MODULES)
        else:
            n_started = rng.randint(0, len(MODULES))
            n_done = rng.randint(0, max(n_started - 1, 0))
        started = enrolled + rng.randrange(0, 3_600_000) if n_started else None
        done_at = None
        if completed and started is not None:
            done_at = started + rng.randrange(1_800_000, 20 * DAY_MS)
        if completed:
            score = rng.randint(55, 100)
        elif n_started:
            score = rng.randint(0, 90)
        else:
            score = 0
        out.append(
            Learner(
                user_id=f"{user_prefix}{i:07d}",
                course_id=course_id,
                enrolled_ms=enrolled,
                started_ms=started,
                modules_started=n_started,
                modules_completed=n_done,
                completed_ms=done_at,
                score=score,
                minutes=rng.randint(0, 900),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Certificate:
    cert_id: str
    user_id: str
    course_id: str
    status: str  # issued or claimed
    issued_ms: int
    claimed_ms: int | None
    expires_ms: int
    score: int

    def record(self) -> dict[str, Any]:
        """The seed's TrainingCertificationRecord JSON."""
        return {
            "id": self.cert_id,
            "userId": self.user_id,
            "courseId": self.course_id,
            "courseName": {"en": f"Course {self.course_id}"},
            "userName": f"User {self.user_id}",
            "userEmail": f"{self.user_id}@example.com",
            "status": self.status,
            "issuedAt": iso(self.issued_ms),
            "claimedAt": iso(self.claimed_ms) if self.claimed_ms is not None else None,
            "expiresAt": iso(self.expires_ms),
            "verificationCode": f"V{self.cert_id}",
            "score": self.score,
        }

    def fields(self) -> dict[str, str]:
        """The certification hash as the seed's ``issueTrainingCertification`` stores it."""
        return {
            "id": self.cert_id,
            "userId": self.user_id,
            "courseId": self.course_id,
            "courseName": json.dumps({"en": f"Course {self.course_id}"}, separators=(",", ":")),
            "userName": f"User {self.user_id}",
            "userEmail": f"{self.user_id}@example.com",
            "status": self.status,
            "issuedAt": iso(self.issued_ms),
            "claimedAt": iso(self.claimed_ms) if self.claimed_ms is not None else "",
            "expiresAt": iso(self.expires_ms),
            "credentialUrl": "",
            "verificationCode": f"V{self.cert_id}",
            "score": str(self.score),
        }


def certificates(count: int, *, seed: int = 2) -> list[Certificate]:
    """``count`` certificates issued over the last year, 60% claimed, all expiring after NOW."""
    rng = random.Random(f"{seed}:certs")
    out: list[Certificate] = []
    for i in range(count):
        issued = NOW_MS - rng.randrange(DAY_MS, 360 * DAY_MS)
        claimed = issued + rng.randrange(60_000, 30 * DAY_MS) if rng.random() < 0.6 else None
        if claimed is not None and claimed >= NOW_MS:
            claimed = None
        out.append(
            Certificate(
                cert_id=f"cert{i:07d}",
                user_id=f"u{i:07d}",
                course_id=f"course{i % 7}",
                status="claimed" if claimed is not None else "issued",
                issued_ms=issued,
                claimed_ms=claimed,
                # Expiring from a minute to 400 days after NOW: some inside the 30-day window.
                expires_ms=NOW_MS + rng.randrange(60_000, 400 * DAY_MS),
                score=rng.randint(60, 100),
            )
        )
    return out


def course_definition(course_id: str, *, published: bool = True, order: int = 0) -> dict[str, Any]:
    """A catalog entry with the four benchmark modules."""
    return {
        "id": course_id,
        "title": {"en": f"Course {course_id}"},
        "category": "sales",
        "isPublished": published,
        "certificateEnabled": True,
        "duration": 120,
        "order": order,
        "modules": [{"id": m, "title": {"en": f"Module {m}"}} for m in MODULES],
    }


# --- writing the seed's layout in bulk ---------------------------------------------------------


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _send(client: redis.Redis, commands: Iterable[tuple[Any, ...]]) -> int:
    """Send commands in pipelines of PIPELINE_CHUNK; returns how many were sent."""
    sent = 0
    pipe = client.pipeline(transaction=False)
    for command in commands:
        queue(pipe, *command)
        sent += 1
        if sent % PIPELINE_CHUNK == 0:
            pipe.execute()
    pipe.execute()
    return sent


def _set_commands(key: str, members: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    for part in _chunks(members, 1000):
        yield ("SADD", key, *part)


def _series_commands(key: str, entries: Sequence[tuple[int, str]]) -> Iterator[tuple[Any, ...]]:
    for part in _chunks(entries, 1000):
        flat: list[Any] = []
        for ms, member in part:
            flat += [ms, member]
        yield ("ZADD", key, *flat)


def learner_commands(
    rows: Sequence[Learner], fields: Sequence[dict[str, str]], prefix: str = ""
) -> Iterator[tuple[Any, ...]]:
    """Commands leaving the keys the seed's write path leaves for these learners.

    ``fields`` are the learners' progress hashes (``Learner.progress_fields``), computed once by
    the caller and shared with the PostgreSQL loader: formatting them is most of a load's time.
    """
    by_course: dict[str, list[tuple[Learner, dict[str, str]]]] = {}
    for row, hashed in zip(rows, fields, strict=True):
        by_course.setdefault(row.course_id, []).append((row, hashed))
    enrol_days: Counter[str] = Counter()
    done_days: Counter[str] = Counter()
    enrol_series: list[tuple[int, str]] = []
    done_series: list[tuple[int, str]] = []
    for course_id, pairs in by_course.items():
        group = [row for row, _ in pairs]
        yield from _set_commands(
            f"{prefix}training:enrollments:{course_id}", [r.user_id for r in group]
        )
        yield from _set_commands(
            f"{prefix}training:completions:{course_id}",
            [r.user_id for r in group if r.completed_ms is not None],
        )
        for i, module_id in enumerate(MODULES):
            started = [r.user_id for r in group if r.modules_started > i]
            done = [r.user_id for r in group if r.modules_completed > i]
            yield from _set_commands(
                f"{prefix}training:module:enrolled:{course_id}:{module_id}", started
            )
            yield from _set_commands(
                f"{prefix}training:module:completed:{course_id}:{module_id}", done
            )
        for r, hashed in pairs:
            flat: list[str] = []
            for name, value in hashed.items():
                flat += [name, value]
            yield ("HSET", f"{prefix}training:progress:{r.user_id}:{course_id}", *flat)
            enrol_days[utc_day(r.enrolled_ms)] += 1
            enrol_series.append((r.enrolled_ms, f"{r.enrolled_ms}:{r.user_id}:{course_id}"))
            if r.completed_ms is not None:
                done_days[utc_day(r.completed_ms)] += 1
                done_series.append((r.completed_ms, f"{r.completed_ms}:{r.user_id}:{course_id}"))
    # One INCRBY per day leaves the counter one INCR per event would.
    for day, n in sorted(enrol_days.items()):
        yield ("INCRBY", f"{prefix}training:enrollment:date:{day}", n)
    for day, n in sorted(done_days.items()):
        yield ("INCRBY", f"{prefix}training:completion:date:{day}", n)
    yield from _series_commands(f"{prefix}training:enrollment:timeseries", enrol_series)
    yield from _series_commands(f"{prefix}training:completion:timeseries", done_series)


def certificate_commands(
    rows: Sequence[Certificate], prefix: str = ""
) -> Iterator[tuple[Any, ...]]:
    by_status: dict[str, list[str]] = {}
    for row in rows:
        flat: list[str] = []
        for name, value in row.fields().items():
            flat += [name, value]
        yield ("HSET", f"{prefix}training:certification:{row.cert_id}", *flat)
        by_status.setdefault(row.status, []).append(row.cert_id)
    yield from _set_commands(f"{prefix}training:certifications:all", [r.cert_id for r in rows])
    for status, ids in by_status.items():
        yield from _set_commands(f"{prefix}training:certifications:status:{status}", ids)


def load_seed_layout(
    client: redis.Redis,
    learner_rows: Sequence[Learner] = (),
    certificate_rows: Sequence[Certificate] = (),
    fields: Sequence[dict[str, str]] | None = None,
) -> int:
    """Write learners and certificates in the older system's layout; returns commands sent."""
    if fields is None:
        fields = [row.progress_fields() for row in learner_rows]
    sent = _send(client, learner_commands(learner_rows, fields))
    return sent + _send(client, certificate_commands(certificate_rows))
