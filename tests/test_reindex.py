"""Reindex and cache invalidation: confined to their own prefix, safe to run twice at once."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import redis.asyncio

import training_analytics as ta

from .factories import NOW, certification, course


def _tenant_data(analytics: Any) -> None:
    analytics.create_training_course(course("c1"))
    for n in range(5):
        at = datetime(2025, 6, 1, tzinfo=UTC) + timedelta(hours=n)
        analytics.record_enrollment(f"u{n}", "c1", at=at)
        if n % 2:
            analytics.record_completion(f"u{n}", "c1", at=at)
        analytics.save_user_course_progress(
            {
                "userId": f"u{n}",
                "courseId": "c1",
                "status": "in_progress",
                "overallScore": 50 + n,
                "startedAt": "2025-06-01T00:00:00Z",
                "lastAccessedAt": "2025-06-01T00:00:00Z",
            }
        )
    for n in range(4):
        analytics.issue_training_certification(certification(f"cert{n}", userId=f"u{n}"))
    analytics.update_certification_status("cert1", "claimed", claimed_at="2025-06-02T00:00:00Z")


def _keys_under(client: redis.Redis, prefix: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for key in client.scan_iter(count=1000):
        if key.startswith(prefix):
            state[key] = client.dump(key)
    return state


def test_a_prefix_with_glob_characters_touches_only_its_own_keys(client: redis.Redis) -> None:
    other = ta.TrainingAnalytics(client, prefix="x1:", clock=lambda: NOW)
    _tenant_data(other)
    client.set("x1:cache:training:analytics:course:c1", "{}")
    before = _keys_under(client, "x1:")
    assert "x1:training:agg:schema" in before

    for prefix in ("x?:", "x*:", "x[1]:", "x\\:"):
        tenant = ta.TrainingAnalytics(client, prefix=prefix, clock=lambda: NOW)
        _tenant_data(tenant)
        client.set(f"{prefix}cache:training:analytics:course:c1", "{}")
        tenant.reindex()
        assert tenant.invalidate_all_training_caches() == 1
        assert tenant.get_course_detailed_analytics("c1").enrollments == 5
        assert _keys_under(client, "x1:") == before, prefix
        client.set(f"{prefix}cache:training:analytics:overview", "{}")
        for pattern in tenant.keys.training_patterns():  # what the CLI's demo reset removes
            matched = {str(k) for k in client.scan_iter(match=pattern, count=1000)}
            assert matched and all(k.startswith(prefix) for k in matched), pattern


def test_glob_escape_makes_patterns_literal() -> None:
    assert ta.keys.glob_escape("a*b?c[d]e\\f") == "a\\*b\\?c\\[d\\]e\\\\f"
    assert ta.TrainingKeys("t?:").derived_pattern() == "t\\?:training:agg:*"


def _derived(client: redis.Redis) -> dict[str, Any]:
    return {k: client.dump(k) for k in client.scan_iter("training:agg:*", count=1000)}


def test_concurrent_reindexes_never_fail_and_agree(client: redis.Redis) -> None:
    analytics = ta.TrainingAnalytics(client, clock=lambda: NOW)
    _tenant_data(analytics)
    analytics.reindex()
    expected = _derived(client)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ta.TrainingAnalytics(client, clock=lambda: NOW).reindex()
        except BaseException as exc:  # noqa: BLE001 - collected and reported by the test
            errors.append(exc)

    for _ in range(8):
        threads = [threading.Thread(target=run) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert _derived(client) == expected
    assert not client.exists("training:reindex:lock")


def test_concurrent_async_reindexes_never_fail(client: redis.Redis, redis_url: str) -> None:
    _tenant_data(ta.TrainingAnalytics(client, clock=lambda: NOW))

    async def rounds() -> None:
        aclient = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        analytics = ta.AsyncTrainingAnalytics(aclient, clock=lambda: NOW)
        try:
            for _ in range(5):
                reports = await asyncio.gather(*(analytics.reindex() for _ in range(3)))
                assert {r.learners for r in reports} == {5}
        finally:
            await aclient.aclose()

    asyncio.run(rounds())
    assert ta.TrainingAnalytics(client, clock=lambda: NOW).get_credential_stats().claimed == 1
