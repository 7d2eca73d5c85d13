"""API keys of the HTTP service, kept hashed in the store (sync and async)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
import redis

import training_analytics as ta
from training_analytics.apikeys import role_allows

from .factories import NOW, Factory, snapshot


def test_create_stores_only_the_digest_and_returns_the_key_once(
    analytics: Any, client: redis.Redis
) -> None:
    created = analytics.create_api_key("ci", "ingest")
    assert created.key.startswith("ta_") and len(created.key) == 46
    assert created.info.name == "ci" and created.info.role == "ingest"
    digest = hashlib.sha256(created.key.encode()).hexdigest()
    assert client.hgetall("training:service:apikeys") == {"ci": digest}
    record = client.hgetall(f"training:service:apikey:{digest}")
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
    assert client.hlen("t1:training:service:apikeys") == 1
    assert make_analytics().verify_api_key(key) is None


def test_roles_nest() -> None:
    assert role_allows("admin", "ingest") and role_allows("ingest", "viewer")
    assert role_allows("viewer", "viewer")
    assert not role_allows("viewer", "ingest") and not role_allows("ingest", "admin")
