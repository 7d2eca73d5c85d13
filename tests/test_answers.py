"""Answers kept while the store is unchanged (``answers``): what the HTTP service's analytics
GETs are served from. Every test runs sync and async (the ``analytics`` fixture)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
import redis

import training_analytics as ta
from training_analytics import courses, credentials
from training_analytics._context import Context
from training_analytics._protocol import Op
from training_analytics.answers import AnswerCache, Stamp
from training_analytics.keys import CATALOG_TAG

from .factories import NOW, Factory, certification, course


class Clock:
    """Seconds for the cache, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def counted(read: Callable[[Context], Op[Any]], calls: list[int]) -> Callable[[Context], Op[Any]]:
    def op(ctx: Context) -> Op[Any]:
        calls.append(1)
        return (yield from read(ctx))

    return op


def course_read(course_id: str) -> Callable[[Context], Op[Any]]:
    return partial(courses.get_course_detailed_analytics, course_id=course_id)


def json_of(model: Any) -> bytes:
    return bytes(model.model_dump_json().encode())


def test_a_kept_answer_is_the_reads_json_until_a_write_changes_the_store(analytics: Any) -> None:
    analytics.create_training_course(course("c1"))
    analytics.record_enrollment("u1", "c1")
    cache, calls = AnswerCache(clock=Clock()), list[int]()
    read = counted(course_read("c1"), calls)
    assert analytics.read_stamp().epoch is None  # nothing was ever kept in this store
    first = analytics.cached_answer(cache, ("course", "c1"), read)
    assert first == json_of(analytics.get_course_detailed_analytics("c1"))
    # That read created the store's epoch; it was not kept (its stamp had none), this one is.
    assert analytics.read_stamp().epoch is not None and len(cache) == 0
    first = analytics.cached_answer(cache, ("course", "c1"), read)
    assert first == json_of(analytics.get_course_detailed_analytics("c1")) and calls == [1, 1]
    # Nothing changed: the kept bytes, without reading the course again.
    assert analytics.cached_answer(cache, ("course", "c1"), read) is first and len(calls) == 2
    calls.clear()
    overview = analytics.cached_answer(cache, ("overview",), courses.get_training_overview_metrics)
    assert overview == json_of(analytics.get_training_overview_metrics())
    analytics.record_enrollment("u2", "c1")  # raises the store version
    second = analytics.cached_answer(cache, ("course", "c1"), read)
    assert second == json_of(analytics.get_course_detailed_analytics("c1")) != first
    assert b'"enrollments":2' in second and calls == [1]
    assert analytics.cached_answer(
        cache, ("overview",), courses.get_training_overview_metrics
    ) == json_of(analytics.get_training_overview_metrics())
    # A replay changes nothing and raises no version: the answer is kept.
    assert not analytics.record_enrollment("u2", "c1")
    assert analytics.cached_answer(cache, ("course", "c1"), read) is second and len(calls) == 1
    # A catalog change raises it too.
    analytics.update_training_course("c1", {"modules": course("c1", modules=1)["modules"]})
    assert analytics.cached_answer(cache, ("course", "c1"), read) == json_of(
        analytics.get_course_detailed_analytics("c1")
    )
    assert len(calls) == 2


def test_an_emptied_store_written_again_never_gets_answers_read_before(
    analytics: Any, client: redis.Redis
) -> None:
    cache = AnswerCache(clock=Clock())
    analytics.create_training_course(course("c1", modules=3))
    analytics.record_enrollment("u1", "c1")
    analytics.cached_answer(cache, ("course", "c1"), course_read("c1"))  # makes the epoch
    before = analytics.read_stamp()
    kept = analytics.cached_answer(cache, ("course", "c1"), course_read("c1"))
    assert analytics.cached_answer(cache, ("course", "c1"), course_read("c1")) is kept
    client.flushdb()
    # The same number of writes: the version is the same again, the figures are not.
    analytics.create_training_course(course("c1", modules=1))
    analytics.record_enrollment("u1", "c1")
    after = analytics.read_stamp()
    assert after.version == before.version and after.epoch != before.epoch
    for _ in range(3):  # the epoch made again, then kept under it
        answer = analytics.cached_answer(cache, ("course", "c1"), course_read("c1"))
        assert answer == json_of(analytics.get_course_detailed_analytics("c1")) != kept
    assert analytics.read_stamp().epoch not in (None, before.epoch)


def test_a_kept_answer_is_given_for_at_most_max_age_seconds(make_analytics: Factory) -> None:
    """Figures that move with the clock (here: expiring within 30 days) raise no version."""
    now = [NOW]
    analytics = make_analytics(clock=lambda: now[0])
    analytics.issue_training_certification(
        certification("x", expiresAt=(NOW + timedelta(days=40)).isoformat())
    )
    clock = Clock()
    cache = AnswerCache(clock=clock, max_age=1.0)
    read = credentials.get_credential_claim_analytics
    analytics.cached_answer(cache, ("credentials",), read)  # makes the epoch
    kept = analytics.cached_answer(cache, ("credentials",), read)
    assert b'"expiringIn30Days":0' in kept
    now[0] = NOW + timedelta(days=15)
    fresh = json_of(analytics.get_credential_claim_analytics())
    assert b'"expiringIn30Days":1' in fresh
    clock.now = 0.99
    assert analytics.cached_answer(cache, ("credentials",), read) is kept
    clock.now = 1.0
    assert analytics.cached_answer(cache, ("credentials",), read) == fresh


def test_check_keys_verifies_each_key_and_reads_the_stamp_in_one_round_trip(
    make_analytics: Factory,
) -> None:
    now = [NOW]
    analytics = make_analytics(clock=lambda: now[0])
    viewer = analytics.create_api_key("dash", "viewer").key
    admin = analytics.create_api_key("ops", "admin").key
    gone = analytics.create_api_key("old", "admin").key
    analytics.revoke_api_key("old")
    analytics.create_training_course(course("c1"))
    now[0] = NOW + timedelta(hours=1)
    keys = [viewer, "ta_" + "x" * 43, "not a key", admin, gone, viewer]
    infos, stamp = analytics.check_keys(keys)
    assert [i.name if i else None for i in infos] == ["dash", None, None, "ops", None, "dash"]
    assert infos[0] is not None and infos[0].last_used_at == "2025-06-15T13:00:00.000Z"
    assert infos[3] is not None and infos[3].role == "admin"
    assert stamp == analytics.read_stamp()
    assert stamp.version == analytics.get_store_version().version
    # Revocation counts from the next check on.
    analytics.revoke_api_key("dash")
    assert analytics.check_keys([viewer, admin]).infos[0] is None
    assert analytics.check_keys([]) == ([], stamp)


def test_a_broken_version_key_keeps_nothing_and_fails_no_read(
    analytics: Any, client: redis.Redis
) -> None:
    analytics.create_training_course(course("c1"))
    key = analytics.create_api_key("dash", "viewer").key
    cache, calls = AnswerCache(clock=Clock()), list[int]()
    read = counted(course_read("c1"), calls)
    expected = json_of(analytics.get_course_detailed_analytics("c1"))
    # On a cluster the store's version is the sum of one counter per write tag: break the
    # catalog's (the only one written here: c1 has no events, so it is not registered).
    keys = analytics.keys
    version = keys.store_version(CATALOG_TAG) if keys.cluster else keys.store_version()
    for broken in ("not a counter", None):
        if broken is None:  # another type: GET fails with WRONGTYPE
            client.delete(version)
            client.hset(version, "x", "1")
        else:
            client.set(version, broken)
        checked = analytics.check_keys([key])
        assert checked.stamp is None and checked.infos[0] is not None
        assert analytics.read_stamp() is None
        calls.clear()
        assert analytics.cached_answer(cache, ("course", "c1"), read) == expected
        assert analytics.cached_answer(cache, ("course", "c1"), read) == expected
        assert calls == [1, 1]  # read each time
    with pytest.raises(ta.StoreError):
        analytics.get_store_version()


def test_an_unknown_course_is_not_kept(analytics: Any) -> None:
    cache, calls = AnswerCache(clock=Clock()), list[int]()
    read = counted(course_read("nope"), calls)
    for _ in range(2):
        with pytest.raises(ta.CourseNotFoundError):
            analytics.cached_answer(cache, ("course", "nope"), read)
    assert calls == [1, 1] and len(cache) == 0


def test_the_cache_is_bounded_and_keeps_the_newest_answer() -> None:
    clock = Clock()
    cache = AnswerCache(clock=clock, max_entries=2, max_bytes=10)
    a, b = Stamp("e", 1), Stamp("e", 2)
    cache.put("x", a, b"xx", 0.0)
    cache.put("y", a, b"yy", 0.0)
    assert cache.get("x", a) == b"xx"  # now the most recently used
    cache.put("z", a, b"zz", 0.0)  # past max_entries: y, the least recently used, goes
    assert cache.get("y", a) is None and cache.get("x", a) == b"xx" and len(cache) == 2
    cache.put("w", a, b"w" * 9, 0.0)  # past max_bytes: the oldest go until it fits
    assert len(cache) == 1 and cache.get("w", a) == b"w" * 9
    cache.put("big", a, b"b" * 11, 0.0)  # larger than the whole cache: not kept
    assert cache.get("big", a) is None
    # A slow read of an older version does not replace a newer answer of the same epoch.
    cache.put("n", b, b"new", 0.0)
    cache.put("n", a, b"old", 0.0)
    assert cache.get("n", b) == b"new" and cache.get("n", a) is None
    cache.put("n", Stamp("f", 1), b"other", 0.0)  # another epoch: replaced
    assert cache.get("n", Stamp("f", 1)) == b"other"
    cache.put("none", None, b"x", 0.0)
    assert cache.get("none", None) is None
    for bad in ({"max_age": -1}, {"max_entries": 0}, {"max_bytes": 0}, {"max_age": float("nan")}):
        with pytest.raises(ta.InvalidInputError):
            AnswerCache(**bad)
