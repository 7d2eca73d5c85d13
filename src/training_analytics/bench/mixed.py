"""A realistic mixed training history, as a migration brings it: every event kind, in time order.

20 courses of 8 modules (by default). Each learner takes a few courses; in each one they enrol,
start and complete modules with a drop-off that grows module by module, save their progress
every other module and at the end, complete the course, and get a certificate that most claim
and a few see revoked or expired. About 14 events per learner and course, interleaved across
learners by time as a platform's event log holds them.

Written as JSON Lines of the `record_many` event dicts (the import format, docs/formats.md).
Deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

COURSES = 20
MODULES = 8
START = datetime(2025, 1, 6, tzinfo=UTC)
SPAN_DAYS = 300


@dataclass(frozen=True)
class MixedHistory:
    """What to generate: ``pairs`` learner-course paths over ``courses`` courses."""

    pairs: int
    courses: int = COURSES
    modules: int = MODULES
    seed: int = 7

    def course_ids(self) -> list[str]:
        return [f"course-{c:02d}" for c in range(self.courses)]


def _iso(ms: int) -> str:
    moment = START + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _path(
    rng: random.Random, user: str, course: str, modules: int, serial: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    """One learner's events in one course, each with its time (ms after START)."""
    day = 86_400_000
    t = rng.randrange(SPAN_DAYS * day)
    yield t, {"kind": "enrollment", "userId": user, "courseId": course, "at": _iso(t)}
    started_at = t + rng.randrange(1, day)
    t = started_at
    done: list[dict[str, Any]] = []
    scores: list[int] = []
    minutes = 0
    finished = True
    for index in range(modules):
        module = f"m{index + 1}"
        yield t, {"kind": "module_start", "userId": user, "courseId": course, "moduleId": module}
        spent = rng.randrange(10, 60)
        # Drop-off: most learners finish a module, fewer as the course goes on.
        if rng.random() > 0.92 - 0.015 * index:
            finished = False
            minutes += spent // 2
            done.append({"moduleId": module, "status": "in_progress", "attempts": 1})
            break
        t += spent * 60_000 + rng.randrange(1, 3_600_000)
        minutes += spent
        score = rng.randrange(55, 100)
        scores.append(score)
        yield (
            t,
            {"kind": "module_completion", "userId": user, "courseId": course, "moduleId": module},
        )
        done.append(
            {
                "moduleId": module,
                "status": "completed",
                "score": score,
                "attempts": 1,
                "timeSpentMinutes": spent,
                "completedAt": _iso(t),
            }
        )
        if index % 2 == 1 and index + 1 < modules:
            yield t, _progress(user, course, done, scores, minutes, started_at, t, None)
        t += rng.randrange(1, 2 * day)
    if not finished:
        yield t, _progress(user, course, done, scores, minutes, started_at, t, None)
        return
    yield t, {"kind": "completion", "userId": user, "courseId": course, "at": _iso(t)}
    yield t, _progress(user, course, done, scores, minutes, started_at, t, t)
    if rng.random() > 0.6:
        return  # a course without a certificate for this learner
    issued = t + rng.randrange(5_000, 90_000)
    cert = f"cert-{serial:08d}"
    expires = issued + 365 * day
    yield (
        issued,
        {
            "kind": "certification_issued",
            "at": _iso(issued),
            "certification": {
                "id": cert,
                "userId": user,
                "courseId": course,
                "courseName": {"en": course},
                "userName": user,
                "userEmail": f"{user}@example.com",
                "status": "issued",
                "issuedAt": _iso(issued),
                "expiresAt": _iso(expires),
                "verificationCode": f"{serial:08X}",
                "score": sum(scores) // len(scores),
            },
        },
    )
    roll = rng.random()
    if roll < 0.7:
        claimed = issued + rng.randrange(60_000, 20 * day)
        yield (
            claimed,
            {
                "kind": "certification_status",
                "certId": cert,
                "newStatus": "claimed",
                "claimedAt": _iso(claimed),
                "at": _iso(claimed),
            },
        )
    elif roll < 0.75:
        revoked = issued + rng.randrange(day, 30 * day)
        yield (
            revoked,
            {
                "kind": "certification_status",
                "certId": cert,
                "newStatus": "revoked",
                "at": _iso(revoked),
            },
        )


def _progress(
    user: str,
    course: str,
    modules: list[dict[str, Any]],
    scores: list[int],
    minutes: int,
    started: int,
    last: int,
    completed: int | None,
) -> dict[str, Any]:
    progress: dict[str, Any] = {
        "userId": user,
        "courseId": course,
        "status": "completed" if completed is not None else "in_progress",
        "moduleProgress": [dict(m) for m in modules],
        "overallScore": sum(scores) // len(scores) if scores else 0,
        "startedAt": _iso(started),
        "lastAccessedAt": _iso(last),
        "totalTimeSpentMinutes": minutes,
    }
    if completed is not None:
        progress["completedAt"] = _iso(completed)
    return {"kind": "progress", "progress": progress, "at": _iso(last)}


def _timed(history: MixedHistory) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every learner-course path's events with their times, path after path (not yet sorted)."""
    rng = random.Random(history.seed)
    courses = history.course_ids()
    taken: list[str] = []
    for pair in range(history.pairs):
        # Learners take three courses each (different ones): pair p is learner p // 3.
        if pair % 3 == 0:
            taken = rng.sample(courses, min(3, len(courses)))
        user = f"learner-{pair // 3:07d}"
        course = taken[pair % len(taken)]
        yield from _path(rng, user, course, history.modules, pair + 1)


def events(history: MixedHistory) -> list[dict[str, Any]]:
    """The whole history, in time order (a learner's events in one course keep their order)."""
    timed = [(t, serial, event) for serial, (t, event) in enumerate(_timed(history))]
    timed.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in timed]


def write_jsonl(history: MixedHistory, path: Path) -> dict[str, int]:
    """Write the history to ``path``; the count of events per kind."""
    counts: dict[str, int] = {}
    # Each event held as its JSON line, not as a dict, until sorted: a quarter of the memory
    # (200,000 learner-courses, 3M events, peaked near 3 GB as dicts).
    timed: list[tuple[int, int, str]] = []
    for serial, (t, event) in enumerate(_timed(history)):
        counts[event["kind"]] = counts.get(event["kind"], 0) + 1
        timed.append((t, serial, json.dumps(event, separators=(",", ":"))))
    timed.sort(key=lambda item: (item[0], item[1]))
    with path.open("w", encoding="utf-8") as out:
        for _, _, line in timed:
            out.write(line)
            out.write("\n")
    return counts
