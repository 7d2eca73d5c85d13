"""Test data in the seed's camelCase form, a fixed clock, and a whole-store snapshot."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)

Factory = Callable[..., Any]


def course(course_id: str = "c1", modules: int = 3, **fields: Any) -> dict[str, Any]:
    """A course in the seed's camelCase form."""
    data: dict[str, Any] = {
        "id": course_id,
        "title": {"en": f"Course {course_id}", "es": f"Curso {course_id}"},
        "description": {"en": "About"},
        "category": "sales",
        "level": "basic",
        "duration": 125,
        "isPublished": True,
        "isRequired": False,
        "passingScore": 70,
        "certificateEnabled": True,
        "order": 1,
        "createdBy": "admin",
        "modules": [
            {
                "id": f"m{i}",
                "title": {"en": f"Module {i}"},
                "lessons": [
                    {
                        "id": f"l{i}",
                        "title": {"en": "L"},
                        "type": "video",
                        "duration": 10,
                        "order": 0,
                    }
                ],
                "order": i,
            }
            for i in range(1, modules + 1)
        ],
    }
    data.update(fields)
    return data


def certification(cert_id: str = "cert1", **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": cert_id,
        "userId": "u1",
        "courseId": "c1",
        "courseName": {"en": "Course c1"},
        "userName": "Ana",
        "userEmail": "ana@example.com",
        "status": "issued",
        "issuedAt": "2025-06-01T10:00:00.000Z",
        "expiresAt": "2026-06-01T10:00:00.000Z",
        "verificationCode": "VC-1",
        "score": 88,
    }
    data.update(fields)
    return data


def snapshot(client: redis.Redis) -> dict[str, Any]:
    """Every key with its type and value: to check that a failed call changed nothing.

    The store version (a count of write calls, not data: a batch raises it once, the same
    events one by one several times) is left out; test_dashboard_ops checks it."""
    state: dict[str, Any] = {}
    for key in sorted(client.scan_iter(count=1000)):
        if re.sub(r":\{[^}]*\}$", "", key).endswith("training:version"):
            continue  # training:version, or a cluster store's training:version:{tag}
        kind = client.type(key)
        if kind == "string":
            value: Any = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        else:
            value = kind
        state[key] = (kind, value)
    return state
