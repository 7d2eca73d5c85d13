"""The older TypeScript module's read algorithms, over raw keys: the tests' oracle.

Deliberately naive (SMEMBERS, then every learner's hash; every certificate), as the seed read:
the library must give the same figures from its aggregates wherever the seed was right.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any, cast

import redis

from training_analytics._time import epoch_ms, parse_timestamp_ms
from training_analytics.helpers import (
    calculate_percentage,
    get_localized_name,
    round_to,
    safe_parse_number,
)


def _round(value: float) -> int:
    return math.floor(value + 0.5)


# The oracle reads through a client with decode_responses=True; redis-py types its replies as
# bytes or str, so these say which.
def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _field(r: redis.Redis, key: str, name: str) -> str | None:
    value = r.hget(key, name)
    return None if value is None else _text(value)


def _members(r: redis.Redis, key: str) -> list[str]:
    return sorted(_text(member) for member in r.smembers(key))


def _ranked(r: redis.Redis, key: str) -> list[str]:
    return [_text(member) for member in cast(list[bytes | str], r.zrange(key, 0, -1))]


def _hash(r: redis.Redis, key: str) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in r.hgetall(key).items()}


def course_detailed_analytics(r: redis.Redis, course_id: str) -> dict[str, Any]:
    enrolled = _members(r, f"training:enrollments:{course_id}")
    completions = r.scard(f"training:completions:{course_id}")
    total_score = total_hours = 0.0
    scored = timed = 0
    for user in enrolled:
        progress = _hash(r, f"training:progress:{user}:{course_id}")
        score = safe_parse_number(progress.get("overallScore"))
        if score > 0:
            total_score += score
            scored += 1
        if progress.get("completedAt") and progress.get("startedAt"):
            started = parse_timestamp_ms(progress["startedAt"])
            completed = parse_timestamp_ms(progress["completedAt"])
            if started is not None and completed is not None and completed > started:
                total_hours += (completed - started) / 3_600_000
                timed += 1
    modules = json.loads(_field(r, f"training:course:{course_id}", "modules") or "[]")
    dropoff = []
    for i, module in enumerate(modules):
        started_n = r.scard(f"training:module:enrolled:{course_id}:{module['id']}")
        completed_n = r.scard(f"training:module:completed:{course_id}:{module['id']}")
        dropoff.append(
            {
                "moduleId": module["id"],
                "moduleName": get_localized_name(module.get("title"), f"Module {i + 1}"),
                "dropoffRate": calculate_percentage(started_n - completed_n, started_n)
                if started_n
                else 0,
            }
        )
    return {
        "enrollments": len(enrolled),
        "completions": completions,
        "completionRate": calculate_percentage(completions, len(enrolled)),
        "averageScore": _round(total_score / scored) if scored else 0,
        "averageTimeToComplete": round_to(total_hours / timed, 1) if timed else 0,
        "dropoffRates": dropoff,
    }


def credential_claim_analytics(r: redis.Redis, now: datetime) -> dict[str, Any]:
    """The seed's figures; its ``pending`` (issued minus claimed over all statuses) is not kept."""
    certificates = [
        _hash(r, f"training:certification:{i}") for i in _members(r, "training:certifications:all")
    ]
    certificates = [c for c in certificates if c]
    claimed = claim_count = 0
    claim_hours = 0.0
    soon = 0
    now_ms = epoch_ms(now)
    for cert in certificates:
        if cert.get("status") == "claimed" or cert.get("claimedAt"):
            claimed += 1
            issued = parse_timestamp_ms(cert.get("issuedAt"))
            claimed_at = parse_timestamp_ms(cert.get("claimedAt"))
            if issued is not None and claimed_at is not None and claimed_at > issued:
                claim_hours += (claimed_at - issued) / 3_600_000
                claim_count += 1
        expires = parse_timestamp_ms(cert.get("expiresAt"))
        if expires is not None and now_ms < expires <= now_ms + 30 * 86_400_000:
            soon += 1
    return {
        "totalIssued": len(certificates),
        "totalClaimed": claimed,
        "claimRate": calculate_percentage(claimed, len(certificates)),
        "averageClaimTimeHours": round_to(claim_hours / claim_count, 1) if claim_count else 0,
        "expiringIn30Days": soon,
    }


def overview(r: redis.Redis) -> dict[str, Any]:
    ids = [i for i in _ranked(r, "training:courses:all") if _field(r, f"training:course:{i}", "id")]
    published = [i for i in ids if _field(r, f"training:course:{i}", "isPublished") == "true"]
    enrolled = {i: r.scard(f"training:enrollments:{i}") for i in ids}
    rates = [
        calculate_percentage(r.scard(f"training:completions:{i}"), enrolled[i])
        for i in published
        if enrolled[i] > 0
    ]
    return {
        "totalCourses": len(ids),
        "publishedCourses": len(published),
        "draftCourses": len(ids) - len(published),
        "totalEnrollments": sum(enrolled.values()),
        "averageCompletionRate": round_to(sum(rates) / len(rates), 1) if rates else 0,
        "totalCertifications": r.scard("training:certifications:all"),
    }
