"""Reindex and cache invalidation: confined to their own prefix, safe to run twice at once."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import redis.asyncio

import training_analytics as ta
from training_analytics import reindex as reindex_module

from .factories import NOW, certification, course
from .stores import RAW_KEYS, async_store_client


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


@RAW_KEYS
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
    assert not client.exists(ta.TrainingAnalytics(client).keys.reindex_lock())


def test_concurrent_async_reindexes_never_fail(client: redis.Redis, redis_url: str) -> None:
    _tenant_data(ta.TrainingAnalytics(client, clock=lambda: NOW))

    async def rounds() -> None:
        aclient = async_store_client(redis_url, decode_responses=True)
        analytics = ta.AsyncTrainingAnalytics(aclient, clock=lambda: NOW)
        try:
            for _ in range(5):
                reports = await asyncio.gather(*(analytics.reindex() for _ in range(3)))
                assert {r.learners for r in reports} == {5}
        finally:
            await aclient.aclose()

    asyncio.run(rounds())
    assert ta.TrainingAnalytics(client, clock=lambda: NOW).get_credential_stats().claimed == 1


class _Clock:
    """A monotonic clock that jumps past a third of the lease on every reading."""

    def __init__(self, step: float, on_tick: Any = None) -> None:
        self.now, self.step, self.ticks, self.on_tick = 0.0, step, 0, on_tick

    def __call__(self) -> float:
        self.now += self.step
        self.ticks += 1
        if self.on_tick is not None:
            self.on_tick(self.ticks)
        return self.now


def test_a_long_reindex_renews_its_lease(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    analytics = ta.TrainingAnalytics(client, clock=lambda: NOW)
    _tenant_data(analytics)
    renewals: list[int] = []
    original = reindex_module._lease

    def counting(ctx: Any, mode: str, token: str) -> Any:
        result = yield from original(ctx, mode, token)
        if mode == "extend":
            renewals.append(result)
        return result

    monkeypatch.setattr(reindex_module, "_lease", counting)
    monkeypatch.setattr(reindex_module, "monotonic", _Clock(step=11.0))
    analytics.reindex()
    assert len(renewals) > 10 and set(renewals) == {1}
    assert not client.exists(ta.TrainingAnalytics(client).keys.reindex_lock())


def test_a_reindex_that_lost_its_lease_stops_and_leaves_the_new_holder_alone(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    analytics = ta.TrainingAnalytics(client, clock=lambda: NOW)
    _tenant_data(analytics)

    def take_over(tick: int) -> None:
        if tick == 3:  # as if the lease ran out and another reindex took the lock
            client.set(analytics.keys.reindex_lock(), "someone-else")

    monkeypatch.setattr(reindex_module, "monotonic", _Clock(step=11.0, on_tick=take_over))
    with pytest.raises(ta.errors.ConcurrentUpdateError, match="lease"):
        analytics.reindex()
    assert client.get(analytics.keys.reindex_lock()) == "someone-else"
