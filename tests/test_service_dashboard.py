"""The routes the dashboard needs, over HTTP against a real ``serve``: the store version with
ETag / If-None-Match, a course's funnel, and the dashboard's files at ``/``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

import training_analytics as ta

from .factories import course
from .service_process import ServiceProcess


@pytest.fixture(scope="module")
def service(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    server = ServiceProcess(redis_url, tmp_path_factory.mktemp("service") / "serve.log")
    yield server
    assert server.terminate() == 0


@pytest.fixture
def keys(client: redis.Redis) -> dict[str, str]:
    admin = ta.TrainingAnalytics(client)
    return {role: admin.create_api_key(role, role).key for role in ("viewer", "ingest", "admin")}


def client_for(service: ServiceProcess, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=service.base + "/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def test_version_answers_304_until_a_write_changes_the_store(
    service: ServiceProcess, keys: dict[str, str]
) -> None:
    viewer, ingest = client_for(service, keys["viewer"]), client_for(service, keys["ingest"])
    first = viewer.get("/version")
    assert first.status_code == 200 and first.json() == {"version": 0}
    etag = first.headers["ETag"]
    assert etag == '"0"' and first.headers["Cache-Control"] == "no-cache"
    unchanged = viewer.get("/version", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["ETag"] == etag
    event = {"kind": "enrollment", "userId": "u1", "courseId": "c1"}
    assert ingest.post("/events", json=event).json()["applied"] == 1
    moved = viewer.get("/version", headers={"If-None-Match": etag})
    assert moved.status_code == 200 and moved.json() == {"version": 1}
    assert moved.headers["ETag"] == '"1"'
    # A replay changes nothing, so the version stays.
    assert ingest.post("/events", json=event).json()["unchanged"] == 1
    assert viewer.get("/version", headers={"If-None-Match": '"x", "1"'}).status_code == 304
    # Like every read, it needs a key.
    assert httpx.get(service.base + "/api/v1/version").status_code == 401


def test_funnel_route(service: ServiceProcess, keys: dict[str, str], client: redis.Redis) -> None:
    admin = client_for(service, keys["admin"])
    assert admin.post("/courses", json=course("c1", modules=2)).status_code == 201
    ingest = client_for(service, keys["ingest"])
    events = [
        {"kind": "module_start", "userId": "u1", "courseId": "c1", "moduleId": "m1"},
        {"kind": "module_completion", "userId": "u1", "courseId": "c1", "moduleId": "m1"},
        {"kind": "module_start", "userId": "u2", "courseId": "c1", "moduleId": "m1"},
    ]
    assert ingest.post("/events", json=events).json()["applied"] == 3
    funnel = client_for(service, keys["viewer"]).get("/courses/c1/funnel")
    assert funnel.status_code == 200
    assert funnel.json() == [
        {
            "moduleId": "m1",
            "moduleName": "Module 1",
            "started": 2,
            "completed": 1,
            "dropoffRate": 50.0,
            "dropoffToNext": 100.0,
        },
        {
            "moduleId": "m2",
            "moduleName": "Module 2",
            "started": 0,
            "completed": 0,
            "dropoffRate": 0,
            "dropoffToNext": None,
        },
    ]
    assert client_for(service, keys["viewer"]).get("/courses/nope/funnel").json() == []
    assert client_for(service, keys["viewer"]).get("/courses/a:b/funnel").status_code == 422


def test_the_dashboard_is_served_without_a_key_and_reads_nothing_itself(
    service: ServiceProcess,
) -> None:
    page = httpx.get(service.base + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in ("app.js", "api.js", "live.js", "style.css", "vendor/echarts/echarts.min.js"):
        reply = httpx.get(f"{service.base}/dashboard/{asset}")
        assert reply.status_code == 200, asset
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        # Nothing from elsewhere: no absolute URL in what the page loads (ECharts' minified
        # build names the SVG and XML namespaces, which are identifiers, not fetched).
        text = reply.text.replace("http://www.w3.org/", "").replace("http://www.w3.org", "")
        if not asset.startswith("vendor/"):
            assert "http://" not in text and "https://" not in text, asset
    assert httpx.get(service.base + "/dashboard/nope.js").status_code == 404
    # Not in the API's description: the dashboard is a client, not an endpoint.
    paths = httpx.get(service.base + "/openapi.json").json()["paths"]
    assert "/" not in paths and "/api/v1/version" in paths
