"""Writes data exactly as the older TypeScript module stored it, with raw commands.

Its habits kept on purpose: three separate writes per enrolment with no de-duplication (a
re-enrolment counts again), completions that do not enrol, module completions that do not
start, certification hashes without the optional fields it left undefined, UTC day keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import redis


def js_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def to_redis_hash(data: dict[str, Any]) -> dict[str, str]:
    """The portal's ``toRedisHash`` as Upstash sent it: null -> "", objects -> JSON."""
    out: dict[str, str] = {}
    for key, value in data.items():
        if value is None:
            out[key] = ""
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, dict | list):
            out[key] = js_json(value)
        else:
            out[key] = str(value)
    return out


def _mapping(fields: Mapping[str, Any]) -> dict[Any, Any]:
    """``fields`` as redis-py's ``hset(mapping=)`` is typed (its key type is a wider union)."""
    return dict(fields)


def create_course(r: redis.Redis, course: dict[str, Any]) -> None:
    data = dict(course)
    data["requiredForTiers"] = (
        js_json(course["requiredForTiers"]) if course.get("requiredForTiers") else ""
    )
    r.hset(f"training:course:{course['id']}", mapping=_mapping(to_redis_hash(data)))
    r.zadd("training:courses:all", {course["id"]: course["order"]})
    r.sadd(f"training:courses:by-category:{course['category']}", course["id"])
    if course["isPublished"]:
        r.sadd("training:courses:published", course["id"])


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def record_enrollment(r: redis.Redis, user: str, course: str, when: datetime) -> None:
    r.sadd(f"training:enrollments:{course}", user)
    r.incr(f"training:enrollment:date:{_day(when)}")
    r.zadd("training:enrollment:timeseries", {f"{_ms(when)}:{user}:{course}": _ms(when)})
    r.delete(f"cache:training:analytics:course:{course}")
    r.delete("cache:training:analytics:overview")


def record_completion(r: redis.Redis, user: str, course: str, when: datetime) -> None:
    r.sadd(f"training:completions:{course}", user)
    r.incr(f"training:completion:date:{_day(when)}")
    r.zadd("training:completion:timeseries", {f"{_ms(when)}:{user}:{course}": _ms(when)})


def record_module(r: redis.Redis, user: str, course: str, module: str, *, completed: bool) -> None:
    kind = "completed" if completed else "enrolled"
    r.sadd(f"training:module:{kind}:{course}:{module}", user)


def save_progress(r: redis.Redis, progress: dict[str, Any]) -> None:
    r.hset(
        f"training:progress:{progress['userId']}:{progress['courseId']}",
        mapping={
            "status": progress["status"],
            "moduleProgress": js_json(progress["moduleProgress"]),
            "overallScore": str(progress["overallScore"]),
            "startedAt": progress["startedAt"],
            "completedAt": progress.get("completedAt") or "",
            "lastAccessedAt": progress["lastAccessedAt"],
            "totalTimeSpentMinutes": str(progress["totalTimeSpentMinutes"]),
            "certificateId": progress.get("certificateId") or "",
            "certificateIssuedAt": progress.get("certificateIssuedAt") or "",
        },
    )


def issue_certification(r: redis.Redis, cert: dict[str, Any]) -> None:
    # `...certification` through Upstash: undefined members are simply absent.
    fields = {k: v for k, v in cert.items() if v is not None}
    fields["courseName"] = js_json(cert["courseName"])
    fields["score"] = str(cert["score"])
    r.hset(f"training:certification:{cert['id']}", mapping=_mapping(fields))
    r.sadd("training:certifications:all", cert["id"])
    r.sadd(f"training:certifications:status:{cert['status']}", cert["id"])


def update_certification_status(
    r: redis.Redis, cert_id: str, status: str, claimed_at: str | None = None
) -> None:
    stored = r.hget(f"training:certification:{cert_id}", "status")
    old = stored.decode() if isinstance(stored, bytes) else stored
    mapping = {"status": status}
    if claimed_at:
        mapping["claimedAt"] = claimed_at
    r.hset(f"training:certification:{cert_id}", mapping=_mapping(mapping))
    if old != status:
        r.srem(f"training:certifications:status:{old}", cert_id)
        r.sadd(f"training:certifications:status:{status}", cert_id)
