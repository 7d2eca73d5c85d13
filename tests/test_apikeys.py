"""API keys of the HTTP service, kept hashed in the store (sync and async)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
import redis

import training_analytics as ta
from training_analytics import apikeys, courses
from training_analytics._context import Context
from training_analytics._exec import execute, run
from training_analytics._protocol import Batch, Op
from training_analytics.apikeys import role_allows

from .factories import NOW, Factory, course, snapshot
from .stores import ONE_SERVER


def test_create_stores_only_the_digest_and_returns_the_key_once(
    analytics: Any, client: redis.Redis
) -> None:
    created = analytics.create_api_key("ci", "ingest")
    assert created.key.startswith("ta_") and len(created.key) == 46
    assert created.info.name == "ci" and created.info.role == "ingest"
    digest = hashlib.sha256(created.key.encode()).hexdigest()
    assert client.hgetall(analytics.keys.api_keys()) == {"ci": digest}
    record = client.hgetall(analytics.keys.api_key(digest))
    assert record == {"name": "ci", "role": "ingest", "createdAt": "2025-06-15T12:00:00.000Z"}
    everything = repr(snapshot(client))
    assert created.key not in everything
    assert analytics.create_api_key("other", "viewer").key != created.key


def test_verify_records_last_use_and_refuses_unknown_or_malformed_keys(
    make_analytics: Factory,
) -> None:
    clock = [NOW]
    analytics = make_analytics(clock=lambda: clock[0])
    key = analytics.create_api_key("dash", "viewer").key
    clock[0] = NOW + timedelta(hours=1)
    info = analytics.verify_api_key(key)
    assert info is not None and info.role == "viewer"
    assert info.last_used_at == "2025-06-15T13:00:00.000Z"
    [listed] = analytics.list_api_keys()
    assert listed.last_used_at == "2025-06-15T13:00:00.000Z"
    assert analytics.verify_api_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert analytics.verify_api_key("") is None
    assert analytics.verify_api_key("Bearer " + key) is None


def test_revoke_takes_effect_at_once_and_leaves_nothing(
    analytics: Any, client: redis.Redis
) -> None:
    key = analytics.create_api_key("temp", "admin").key
    assert analytics.has_api_keys()
    analytics.revoke_api_key("temp")
    assert analytics.verify_api_key(key) is None
    assert analytics.list_api_keys() == []
    assert not analytics.has_api_keys()
    # Verifying a revoked key must not bring its record back.
    assert snapshot(client) == {}


def test_names_are_unique_and_checked(analytics: Any, client: redis.Redis) -> None:
    analytics.create_api_key("ops", "admin")
    before = snapshot(client)
    with pytest.raises(ta.ApiKeyExistsError):
        analytics.create_api_key("ops", "viewer")
    with pytest.raises(ta.InvalidIdError):
        analytics.create_api_key("a:b", "viewer")
    with pytest.raises(ta.InvalidInputError, match="unknown role"):
        analytics.create_api_key("x", "root")
    with pytest.raises(ta.ApiKeyNotFoundError):
        analytics.revoke_api_key("nobody")
    assert snapshot(client) == before


def test_list_is_by_name_without_secrets(analytics: Any) -> None:
    analytics.create_api_key("zed", "viewer")
    analytics.create_api_key("amy", "admin")
    listed = analytics.list_api_keys()
    assert [(k.name, k.role) for k in listed] == [("amy", "admin"), ("zed", "viewer")]
    assert "key" not in listed[0].model_dump(by_alias=True)


def test_keys_live_under_the_prefix(make_analytics: Factory, client: redis.Redis) -> None:
    tenant = make_analytics(prefix="t1:")
    key = tenant.create_api_key("k", "viewer").key
    assert tenant.keys.api_keys().startswith("t1:training:service:apikeys")
    assert client.hlen(tenant.keys.api_keys()) == 1
    assert make_analytics().verify_api_key(key) is None


def test_roles_nest() -> None:
    assert role_allows("admin", "ingest") and role_allows("ingest", "viewer")
    assert role_allows("viewer", "viewer")
    assert not role_allows("viewer", "ingest") and not role_allows("ingest", "admin")


class _Counted:
    """A read that counts the round trips it makes."""

    def __init__(self, read: Callable[[Context], Op[Any]]) -> None:
        self.read, self.trips = read, 0

    def __call__(self, ctx: Context) -> Op[Any]:
        op = self.read(ctx)
        request = next(op)
        try:
            while True:
                self.trips += 1
                try:
                    reply = yield request
                except ta.TrainingAnalyticsError as exc:
                    request = op.throw(exc)
                else:
                    request = op.send(reply)
        except StopIteration as done:
            return done.value


def _course_read(course_id: str) -> Callable[[Context], Op[Any]]:
    return partial(courses.get_course_detailed_analytics, course_id=course_id)


@ONE_SERVER
def test_a_read_with_a_key_verifies_it_in_the_reads_first_round_trip(
    make_analytics: Factory, client: redis.Redis
) -> None:
    clock = [NOW]
    analytics = make_analytics(clock=lambda: clock[0])
    analytics.create_training_course(course("c1"))
    analytics.record_enrollment("u1", "c1")
    key = analytics.create_api_key("dash", "viewer").key
    clock[0] = NOW + timedelta(hours=2)
    expected = analytics.get_course_detailed_analytics("c1")
    outcome = analytics.read_with_api_key(key, "viewer", _course_read("c1"))
    assert outcome.allowed and outcome.value == expected
    assert outcome.info is not None and outcome.info.last_used_at == "2025-06-15T14:00:00.000Z"
    # The read alone takes two round trips (counts, then the modules' drop-off); with the key
    # check riding in the first, the whole call takes two as well.
    ctx = ta.TrainingAnalytics(client).context
    alone, keyed = _Counted(_course_read("c1")), _Counted(_course_read("c1"))
    run(alone(ctx), client)
    trips = 0
    op = apikeys.read_with_api_key(ctx, key, "viewer", keyed)
    request = next(op)
    try:
        while True:
            trips += 1
            assert isinstance(request, Batch)
            request = op.send(execute(client, request))
    except StopIteration:
        pass
    assert alone.trips == 2 and trips == 2


def test_a_read_with_a_refused_key_stops_after_its_first_round_trip(
    analytics: Any, client: redis.Redis
) -> None:
    analytics.create_training_course(course("c1"))
    viewer = analytics.create_api_key("dash", "viewer").key
    revoked = analytics.create_api_key("old", "admin").key
    analytics.revoke_api_key("old")
    before = snapshot(client)
    # A role too low: the key is known, the read's result withheld.
    low = analytics.read_with_api_key(viewer, "admin", _course_read("c1"))
    assert low.info is not None and low.info.name == "dash" and not low.allowed
    assert low.value is None
    # Revoked, unknown or malformed: no record, nothing read, nothing written.
    for key in (revoked, "ta_" + "x" * 43, "", "Bearer " + viewer):
        refused = analytics.read_with_api_key(key, "viewer", _course_read("c1"))
        assert refused == (None, False, None)
    # An unknown course's 404 is for known keys only: a refused key gets its refusal.
    assert analytics.read_with_api_key(revoked, "viewer", _course_read("nope")).info is None
    with pytest.raises(ta.CourseNotFoundError):
        analytics.read_with_api_key(viewer, "viewer", _course_read("nope"))
    # Only the known key's last use changed.
    used = analytics.keys.api_key(hashlib.sha256(viewer.encode()).hexdigest())
    after = snapshot(client)
    assert {k: v for k, v in after.items() if k != used} == {
        k: v for k, v in before.items() if k != used
    }
    with pytest.raises(ta.InvalidInputError, match="unknown role"):
        analytics.read_with_api_key(viewer, "root", _course_read("c1"))


def test_a_failing_first_round_trip_answers_for_the_key_first(
    analytics: Any, client: redis.Redis
) -> None:
    analytics.create_training_course(course("c1"))
    key = analytics.create_api_key("dash", "viewer").key
    client.set(analytics.keys.course_stats("c1"), "not a hash")  # HMGET fails: WRONGTYPE
    assert analytics.read_with_api_key("ta_" + "y" * 43, "viewer", _course_read("c1")).info is None
    with pytest.raises(ta.StoreError):
        analytics.read_with_api_key(key, "viewer", _course_read("c1"))
    with pytest.raises(ta.StoreError):  # the same error as the read alone
        analytics.get_course_detailed_analytics("c1")
