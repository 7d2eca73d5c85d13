"""``/xapi/statements`` end to end: a real ``serve`` process, statements shaped as Open edX and
cmi5 send them, the xAPI status codes, and nothing written by a refused request."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import training_analytics as ta

from . import xapi_statements as x
from .factories import snapshot
from .service_process import ServiceProcess
from .test_statements import UUIDS, expected_events, real_world

VERSION = {"X-Experience-API-Version": "1.0.3"}


@pytest.fixture(scope="module")
def service(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    server = ServiceProcess(redis_url, tmp_path_factory.mktemp("xapi") / "serve.log")
    yield server
    assert server.terminate() == 0


@pytest.fixture
def keys(client: redis.Redis) -> dict[str, str]:
    admin = ta.TrainingAnalytics(client)
    return {role: admin.create_api_key(role, role).key for role in ("viewer", "ingest", "admin")}


def basic(name: str, key: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}", **VERSION}


@pytest.fixture
def lrs(service: ServiceProcess, keys: dict[str, str]) -> Iterator[httpx.Client]:
    """A client as an LRS client is configured: Basic auth with the ingest key."""
    with httpx.Client(
        base_url=service.base + "/xapi", headers=basic("ingest", keys["ingest"]), timeout=30
    ) as http:
        yield http


def data(client: redis.Redis) -> dict[str, Any]:
    """The store without the service's own keys (API keys, statement ids)."""
    return {
        key: value
        for key, value in snapshot(client).items()
        if ":service:" not in key and ":xapi:" not in key
    }


def store(client: redis.Redis) -> dict[str, Any]:
    """The store without the API keys (whose last use every request records)."""
    return {key: value for key, value in snapshot(client).items() if ":service:" not in key}


def refused(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["X-Experience-API-Version"] == "1.0.3"
    assert response.headers["content-type"] == "application/problem+json"
    detail: str = response.json()["detail"]
    return detail


def test_statements_give_the_analytics_of_the_same_events(
    lrs: httpx.Client, client: redis.Redis, service: ServiceProcess, keys: dict[str, str]
) -> None:
    statements = real_world()
    reply = lrs.post("/statements", json=statements)
    assert reply.status_code == 200, reply.text
    assert reply.headers["X-Experience-API-Version"] == "1.0.3"
    assert reply.json() == [s["id"] for s in statements]
    by_xapi = {k: v for k, v in data(client).items() if not k.startswith("e:")}
    ta.TrainingAnalytics(client, prefix="e:").record_many(expected_events())
    by_events = {k.removeprefix("e:"): v for k, v in data(client).items() if k.startswith("e:")}
    assert by_xapi == by_events
    # Sent again (an LRS forwarding twice): same ids, nothing changes.
    before = store(client)
    again = lrs.post("/statements", json=statements)
    assert again.status_code == 200 and again.json() == reply.json()
    assert store(client) == before
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    metrics = httpx.get(service.base + "/metrics", headers=admin).text
    assert 'training_analytics_xapi_statements_total{outcome="ignored"}' in metrics
    assert 'training_analytics_xapi_statements_total{outcome="duplicate"}' in metrics
    log = service.log.read_text()
    assert "6 statement(s) ignored" in log and "unregistered is not supported" in log


def test_one_statement_without_an_id_gets_one(lrs: httpx.Client, client: redis.Redis) -> None:
    statement = x.edx_enrollment(UUIDS[0], "u1", "2025-03-01T10:00:00Z")
    del statement["id"]
    reply = lrs.post("/statements", json=statement)
    [given] = reply.json()
    keys = ta.TrainingAnalytics(client).keys  # the store's layout: one server's or a cluster's
    assert len(given) == 36 and client.exists(keys.xapi_statement(given))
    assert client.scard(keys.course_enrollments(x.EDX_COURSE_ID)) == 1


def test_put(lrs: httpx.Client, client: redis.Redis) -> None:
    statement = x.edx_enrollment(UUIDS[0], "u1", "2025-03-01T10:00:00Z")
    del statement["id"]
    put = lrs.put("/statements", params={"statementId": UUIDS[0]}, json=statement)
    assert put.status_code == 204 and put.content == b""
    assert put.headers["X-Experience-API-Version"] == "1.0.3"
    assert (
        lrs.put("/statements", params={"statementId": UUIDS[0]}, json=statement).status_code == 204
    )
    before = store(client)
    other = x.edx_enrollment(UUIDS[0], "u2", "2025-03-01T10:00:00Z")
    assert UUIDS[0] in refused(
        lrs.put("/statements", params={"statementId": UUIDS[0]}, json=other), 409
    )
    assert "differs" in refused(
        lrs.put("/statements", params={"statementId": UUIDS[1]}, json=other), 400
    )
    assert "required" in refused(lrs.put("/statements", json=statement), 400)
    assert "UUID" in refused(
        lrs.put("/statements", params={"statementId": "nope"}, json=statement), 400
    )
    assert "one statement" in refused(
        lrs.put("/statements", params={"statementId": UUIDS[2]}, json=[statement]), 400
    )
    assert store(client) == before


def test_a_different_statement_under_a_held_id_refuses_the_batch(
    lrs: httpx.Client, client: redis.Redis
) -> None:
    lrs.post("/statements", json=[x.edx_enrollment(UUIDS[0], "u1", "2025-03-01T10:00:00Z")])
    before = store(client)
    batch = [
        x.edx_enrollment(UUIDS[1], "u2", "2025-03-01T10:00:00Z"),
        x.edx_enrollment(UUIDS[0], "u3", "2025-03-01T10:00:00Z"),
    ]
    refused(lrs.post("/statements", json=batch), 409)
    assert store(client) == before


def test_invalid_statements_write_nothing(
    lrs: httpx.Client, client: redis.Redis, service: ServiceProcess
) -> None:
    good = x.edx_enrollment(UUIDS[0], "u1", "2025-03-01T10:00:00Z")
    bad_iri = json.loads(json.dumps(good))
    bad_iri["object"]["id"] = "not an iri"
    no_actor = {k: v for k, v in good.items() if k != "actor"}
    before = store(client)
    assert "object" in refused(lrs.post("/statements", json=[good, bad_iri]), 400)
    assert "statement 1: actor" in refused(lrs.post("/statements", json=[good, no_actor]), 400)
    assert "twice" in refused(lrs.post("/statements", json=[good, good]), 400)
    refused(
        lrs.post("/statements", content=b"[{", headers={"content-type": "application/json"}), 400
    )
    for version in ("0.95", "3.0.0"):
        wrong = lrs.post("/statements", json=[good], headers={"X-Experience-API-Version": version})
        assert "not supported" in refused(wrong, 400)
    missing = httpx.post(
        service.base + "/xapi/statements",
        json=[good],
        headers={"Authorization": lrs.headers["Authorization"]},
    )
    assert "missing" in refused(missing, 400)
    oversized = b"[" + b" " * (17 * 1024 * 1024) + b"]"
    refused(
        lrs.post("/statements", content=oversized, headers={"content-type": "application/json"}),
        413,
    )
    assert store(client) == before
    assert data(client) == {}


def test_auth(service: ServiceProcess, keys: dict[str, str]) -> None:
    url = service.base + "/xapi/statements"
    statement = [x.edx_enrollment(UUIDS[0], "u1", "2025-03-01T10:00:00Z")]
    nobody = httpx.post(url, json=statement, headers=VERSION)
    refused(nobody, 401)
    assert nobody.headers["WWW-Authenticate"].startswith("Basic")
    assert "unknown" in refused(
        httpx.post(url, json=statement, headers=basic("viewer", keys["ingest"])), 401
    )
    refused(httpx.post(url, json=statement, headers=basic("ingest", "ta_" + "x" * 43)), 401)
    refused(httpx.post(url, json=statement, headers=basic("viewer", keys["viewer"])), 403)
    bearer = {"Authorization": f"Bearer {keys['ingest']}", **VERSION}
    assert httpx.post(url, json=statement, headers=bearer).status_code == 200
    about = httpx.get(service.base + "/xapi/about")
    assert about.json() == {"version": ["1.0.3", "2.0.0"]}
    assert about.headers["X-Experience-API-Version"] == "1.0.3"
    v2 = httpx.post(url, json=statement, headers={**bearer, "X-Experience-API-Version": "2.0.0"})
    assert v2.headers["X-Experience-API-Version"] == "2.0.0"


def test_openapi_lists_the_xapi_routes(service: ServiceProcess, tmp_path: Path) -> None:
    paths = httpx.get(service.base + "/openapi.json").json()["paths"]
    assert {"post", "put"} <= set(paths["/xapi/statements"])


def test_serve_options_configure_the_mapping(
    redis_url: str, client: redis.Redis, keys: dict[str, str], tmp_path: Path
) -> None:
    server = ServiceProcess(
        redis_url,
        tmp_path / "serve.log",
        "--xapi-course-pattern",
        r"^https://lms\.example\.org/course/(?P<id>[^/]+)$",
        "--xapi-learner-id",
        "mbox,account",
        "--xapi-retention-days",
        "1",
    )
    try:
        statement = x.edx_enrollment(UUIDS[0], "u1", "2025-03-01T10:00:00Z")
        statement["object"] = {"id": x.EDX_COURSE_IRI}  # untyped: the pattern makes it a course
        statement["actor"] = {"mbox": "mailto:ana@example.org"}
        reply = httpx.post(
            server.base + "/xapi/statements",
            json=statement,
            headers=basic("ingest", keys["ingest"]),
        )
        assert reply.status_code == 200, reply.text
        store = ta.TrainingAnalytics(client).keys
        enrolled = client.smembers(store.course_enrollments(x.EDX_COURSE_ID))
        assert enrolled == {"ana@example.org"}
        assert 86_390 <= client.ttl(store.xapi_statement(UUIDS[0])) <= 86_400
    finally:
        assert server.terminate() == 0
    bad = subprocess.run(
        [sys.executable, "-m", "training_analytics", "serve", "--xapi-module-pattern", "("],
        env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "--xapi-*" in bad.stderr and "module pattern" in bad.stderr
