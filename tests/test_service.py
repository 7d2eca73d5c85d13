"""The HTTP service, end to end: a real ``serve`` process (uvicorn on a free loopback port)
against the test store, called over HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import training_analytics as ta
from training_analytics.cluster.urls import is_cluster_url

from .factories import certification, course
from .service_process import ServiceProcess, free_port
from .stores import RAW_KEYS

PROBLEM = "application/problem+json"
LATER = "2040-01-01T00:00:00.000Z"  # the service runs on the real clock


@pytest.fixture(scope="module")
def service(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("service") / "serve.log"
    server = ServiceProcess(redis_url, log)
    yield server
    assert server.terminate() == 0


@pytest.fixture
def keys(client: redis.Redis) -> dict[str, str]:
    """A fresh key per role (the store is flushed before each test)."""
    admin = ta.TrainingAnalytics(client)
    return {role: admin.create_api_key(role, role).key for role in ("viewer", "ingest", "admin")}


@pytest.fixture
def api(service: ServiceProcess, keys: dict[str, str]) -> Iterator[httpx.Client]:
    """An admin client of the API."""
    headers = {"Authorization": f"Bearer {keys['admin']}"}
    with httpx.Client(base_url=service.base + "/api/v1", headers=headers, timeout=30) as http:
        yield http


def as_role(api: httpx.Client, key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {"Authorization": ""}


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and "type" in body
    return body


# --- every endpoint ------------------------------------------------------------------------------


def test_health_readiness_openapi_and_docs(service: ServiceProcess, redis_url: str) -> None:
    assert httpx.get(service.base + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(service.base + "/readyz").json()
    if is_cluster_url(redis_url):  # a cluster's readiness also says how its nodes stand
        health = ready.pop("cluster")
        assert health["state"] == "ok" and health["unreachable"] == []
        assert health["reachable"] == health["nodes"] > 0
    assert ready == {"status": "ready"}
    schema = httpx.get(service.base + "/openapi.json").json()
    paths = set(schema["paths"])
    assert {
        "/api/v1/overview",
        "/api/v1/courses",
        "/api/v1/courses/{courseId}",
        "/api/v1/courses/{courseId}/publish",
        "/api/v1/courses/{courseId}/unpublish",
        "/api/v1/courses/{courseId}/analytics",
        "/api/v1/analytics/courses",
        "/api/v1/series/{kind}",
        "/api/v1/events",
        "/api/v1/progress/{userId}/{courseId}",
        "/api/v1/certifications",
        "/api/v1/certifications/stats",
        "/api/v1/certifications/expiring",
        "/api/v1/certifications/{certId}",
        "/api/v1/certifications/{certId}/claim",
        "/api/v1/certifications/{certId}/expire",
        "/api/v1/certifications/{certId}/revoke",
        "/api/v1/credentials/analytics",
        "/api/v1/cache/invalidate",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= paths
    errors = schema["paths"]["/api/v1/courses/{courseId}"]["get"]["responses"]["404"]
    assert list(errors["content"]) == [PROBLEM]
    assert "text/html" in httpx.get(service.base + "/docs").headers["content-type"]


def test_interactive_docs_load_nothing_from_elsewhere(service: ServiceProcess) -> None:
    """/docs works offline: Swagger UI comes from the package, not from a CDN."""
    page = httpx.get(service.base + "/docs").text
    assert "/openapi.json" in page
    sources = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r"url: '([^']+)'", page)
    assert sources, page
    assert all(source.startswith("/") for source in sources), sources
    shipped = Path(ta.__file__).parent / "service" / "swagger-ui"
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        reply = httpx.get(f"{service.base}/docs/assets/{asset}")
        assert reply.status_code == 200, asset
        assert reply.content == (shipped / asset).read_bytes(), asset


def test_catalog(api: httpx.Client) -> None:
    created = api.post("/courses", json=course("c1", isPublished=False))
    assert created.status_code == 201
    assert created.headers["location"].endswith("/api/v1/courses/c1")
    assert created.json()["createdAt"] == created.json()["updatedAt"] != ""
    problem_of(api.post("/courses", json=course("c1")), 409)
    api.post("/courses", json=course("c2", category="legal", order=0))
    assert [c["id"] for c in api.get("/courses").json()] == ["c2", "c1"]
    assert [c["id"] for c in api.get("/courses", params={"status": "draft"}).json()] == ["c1"]
    assert [c["id"] for c in api.get("/courses", params={"category": "legal"}).json()] == ["c2"]
    got = api.get("/courses/c1").json()
    assert got["title"] == {"en": "Course c1", "es": "Curso c1"} and got["isPublished"] is False
    patched = api.patch("/courses/c1", json={"passingScore": 80})
    assert patched.status_code == 200 and patched.json()["passingScore"] == 80
    problem_of(api.patch("/courses/c1", json={"nonsense": 1}), 422)
    assert api.post("/courses/c1/publish").json()["isPublished"] is True
    assert api.post("/courses/c1/unpublish").json()["isPublished"] is False
    assert api.delete("/courses/c1").status_code == 204
    problem_of(api.get("/courses/c1"), 404)
    problem_of(api.delete("/courses/c1"), 404)
    problem_of(api.post("/courses/c1/publish"), 404)


def test_events_then_analytics(api: httpx.Client) -> None:
    api.post("/courses", json=course("c1"))
    events = [
        {"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": "2025-06-01T10:00:00Z"},
        {"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": "2025-06-01T10:00:00Z"},
        {"kind": "enrollment", "userId": "u:2", "courseId": "c1"},
        {"kind": "mystery"},
        {"kind": "module_completion", "userId": "u1", "courseId": "c1", "moduleId": "m1"},
        {"kind": "completion", "userId": "u1", "courseId": "c1", "at": "2025-06-02T10:00:00Z"},
    ]
    reply = api.post("/events", json=events)
    assert reply.status_code == 200
    body = reply.json()
    assert (body["applied"], body["unchanged"], body["rejected"]) == (3, 1, 2)
    assert [r["status"] for r in body["results"]] == [
        "applied", "unchanged", "rejected", "rejected", "applied", "applied",
    ]  # fmt: skip
    assert body["results"][2]["error"] == "InvalidIdError"
    assert body["results"][3]["index"] == 3 and body["results"][3]["message"]
    single = api.post("/events", json={"kind": "enrollment", "userId": "u3", "courseId": "c1"})
    assert single.json()["applied"] == 1
    lines = b'{"kind":"enrollment","userId":"u4","courseId":"c1"}\n\n{not json\n'
    ndjson = api.post(
        "/events", content=lines, headers={"content-type": "application/x-ndjson"}
    ).json()
    assert [r["status"] for r in ndjson["results"]] == ["applied", "rejected"]
    assert "line 3 is not JSON" in ndjson["results"][1]["message"]

    overview = api.get("/overview").json()
    assert overview["totalEnrollments"] == 3 and overview["publishedCourses"] == 1
    analytics = api.get("/courses/c1/analytics").json()
    assert analytics["enrollments"] == 3 and analytics["completions"] == 1
    assert [d["moduleId"] for d in analytics["dropoffRates"]] == ["m1", "m2", "m3"]
    problem_of(api.get("/courses/nowhere/analytics"), 404)
    page = api.get("/analytics/courses", params={"limit": 1}).json()
    assert page["items"][0]["id"] == "c1" and page["items"][0]["status"] == "published"
    assert page["items"][0]["analytics"] == analytics and page["nextCursor"] is None
    series = api.get(
        "/series/enrollments", params={"from": "2025-06-01", "to": "2025-06-03"}
    ).json()
    assert [p["count"] for p in series["points"]] == [1, 0, 0]
    assert series["summary"] == {"total": 1, "average": 0.33, "peak": 1, "peakDate": "2025-06-01"}
    completions = api.get(
        "/series/completions", params={"from": "2025-06-01", "to": "2025-06-03", "courseId": "c1"}
    ).json()
    assert completions["summary"]["peakDate"] == "2025-06-02"
    assert len(api.get("/series/enrollments").json()["points"]) == 30
    problem_of(api.get("/series/claims"), 422)
    problem_of(
        api.get("/series/enrollments", params={"from": "2025-06-05", "to": "2025-06-01"}), 422
    )


def test_progress(api: httpx.Client) -> None:
    problem_of(api.get("/progress/u1/c1"), 404)
    progress = {"status": "in_progress", "overallScore": 75, "startedAt": "2025-06-01T10:00:00Z"}
    saved = api.put("/progress/u1/c1", json=progress)
    assert saved.status_code == 200 and saved.json()["userId"] == "u1"
    got = api.get("/progress/u1/c1").json()
    assert got["overallScore"] == 75 and got["status"] == "in_progress"
    problem_of(api.put("/progress/u1/c1", json={**progress, "userId": "u2"}), 422)
    problem_of(api.put("/progress/u1/c1", json={**progress, "overallScore": 140}), 422)
    problem_of(api.put("/progress/u1/c1", json={"status": "dancing"}), 422)


def test_certifications(api: httpx.Client) -> None:
    for n in range(5):
        record = certification(f"cert{n}", courseId="c1" if n % 2 else "c2", expiresAt=LATER)
        reply = api.post("/certifications", json=record)
        assert reply.status_code == 201 and reply.headers["location"].endswith(f"/cert{n}")
    again = certification("cert0", courseId="c2", expiresAt=LATER)
    assert api.post("/certifications", json=again).status_code == 200
    problem_of(api.post("/certifications", json={**again, "score": 1}), 409)
    assert api.get("/certifications/cert1").json()["courseId"] == "c1"
    problem_of(api.get("/certifications/none"), 404)

    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/certifications", params=params).json()
        assert len(page["items"]) <= 2
        seen += [r["id"] for r in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"cert{n}" for n in range(5)]
    by_course = api.get("/certifications", params={"courseId": "c1"}).json()
    assert sorted(r["id"] for r in by_course["items"]) == ["cert1", "cert3"]

    claimed = api.post("/certifications/cert1/claim", json={"claimedAt": "2025-06-10T00:00:00Z"})
    assert claimed.json()["status"] == "claimed"
    assert claimed.json()["claimedAt"] == "2025-06-10T00:00:00.000Z"
    assert api.post("/certifications/cert2/claim").json()["status"] == "claimed"
    assert api.post("/certifications/cert3/expire").json()["status"] == "expired"
    assert api.post("/certifications/cert3/revoke").json()["status"] == "revoked"
    illegal = problem_of(api.post("/certifications/cert3/claim"), 409)
    assert illegal["type"].endswith("IllegalTransitionError")
    problem_of(api.post("/certifications/none/revoke"), 404)
    statuses = api.get("/certifications", params={"status": "claimed"}).json()
    assert sorted(r["id"] for r in statuses["items"]) == ["cert1", "cert2"]
    stats = api.get("/certifications/stats").json()
    assert stats["claimed"] == 2 and stats["revoked"] == 1
    api.post("/certifications", json=certification("soon", expiresAt=in_days(3)))
    api.post("/certifications", json=certification("sooner", expiresAt=in_days(1)))
    expiring = api.get("/certifications/expiring", params={"days": 30}).json()
    assert [r["id"] for r in expiring] == ["sooner", "soon"]
    credentials = api.get("/credentials/analytics").json()
    assert credentials["totalIssued"] == 7 and credentials["totalClaimed"] == 2
    assert credentials["expiringIn30Days"] == 2


def in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@RAW_KEYS
def test_cache_invalidation(api: httpx.Client, client: redis.Redis) -> None:
    client.set("cache:training:analytics:course:c1", "{}")
    client.set("cache:training:analytics:course:c2", "{}")
    client.set("cache:training:analytics:overview", "{}")
    assert api.post("/cache/invalidate", json={"courseId": "c1"}).json() == {"deleted": 2}
    assert api.post("/cache/invalidate").json() == {"deleted": 1}


# --- auth ----------------------------------------------------------------------------------------

# One request per endpoint group, with the lowest role allowed to make it.
GROUPS: list[tuple[str, str, str, Any]] = [
    ("viewer", "GET", "/overview", None),
    ("viewer", "GET", "/courses", None),
    ("viewer", "GET", "/analytics/courses", None),
    ("viewer", "GET", "/series/enrollments", None),
    ("viewer", "GET", "/certifications", None),
    ("viewer", "GET", "/certifications/stats", None),
    ("viewer", "GET", "/credentials/analytics", None),
    ("ingest", "POST", "/events", []),
    ("ingest", "PUT", "/progress/u1/c1", {"status": "in_progress"}),
    ("ingest", "POST", "/certifications", certification("a1")),
    ("ingest", "POST", "/certifications/a1/revoke", None),
    ("admin", "POST", "/courses", course("k1")),
    ("admin", "PATCH", "/courses/k1", {"order": 3}),
    ("admin", "POST", "/courses/k1/publish", None),
    ("admin", "POST", "/cache/invalidate", None),
]
RANK = {"viewer": 0, "ingest": 1, "admin": 2}


def test_each_role_against_each_group(
    service: ServiceProcess, keys: dict[str, str], client: redis.Redis
) -> None:
    with httpx.Client(base_url=service.base + "/api/v1", timeout=30) as http:
        for needed, method, path, body in GROUPS:
            for key in (None, "ta_" + "x" * 43, "not-a-key"):
                reply = http.request(method, path, json=body, headers=as_role(http, key))
                problem_of(reply, 401)
                assert reply.headers["www-authenticate"].startswith("Bearer")
            for role, key in keys.items():
                reply = http.request(method, path, json=body, headers=as_role(http, key))
                if RANK[role] < RANK[needed]:
                    assert problem_of(reply, 403)["detail"].startswith(f"this needs the {needed}")
                else:
                    assert reply.status_code < 300, (role, method, path, reply.text)
        metrics = http.get(service.base + "/metrics", headers=as_role(http, keys["ingest"]))
        problem_of(metrics, 403)
        text = http.get(service.base + "/metrics", headers=as_role(http, keys["admin"])).text
        assert 'route="/api/v1/overview",status="200"' in text
        assert "training_analytics_http_request_duration_seconds_bucket" in text
        # Revocation is immediate.
        ta.TrainingAnalytics(client).revoke_api_key("viewer")
        problem_of(http.get("/overview", headers=as_role(http, keys["viewer"])), 401)
    log = service.output()
    assert "GET /api/v1/overview" in log  # the access log is on ...
    for key in keys.values():
        assert key not in log  # ... and never shows a key


def test_events_are_counted_in_metrics(service: ServiceProcess, api: httpx.Client) -> None:
    api.post("/events", json=[{"kind": "enrollment", "userId": "m1", "courseId": "c9"}, {}])
    text = api.get(service.base + "/metrics").text
    assert 'training_analytics_events_ingested_total{outcome="applied"}' in text
    assert 'training_analytics_events_ingested_total{outcome="rejected"}' in text


def test_cors_is_off_by_default(api: httpx.Client) -> None:
    reply = api.get("/overview", headers={"Origin": "https://evil.example"})
    assert reply.status_code == 200 and "access-control-allow-origin" not in reply.headers
    preflight = api.options(
        "/overview",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers


# --- bad input is never a 500 --------------------------------------------------------------------


def test_bad_bodies_and_parameters(api: httpx.Client) -> None:
    json_headers = {"content-type": "application/json"}
    problem_of(api.post("/events", content=b"{nope", headers=json_headers), 400)
    problem_of(api.post("/events", content=b"42", headers=json_headers), 422)
    problem_of(api.post("/events", content=b"x", headers={"content-type": "text/csv"}), 415)
    problem_of(api.post("/courses", content=b"[", headers=json_headers), 400)
    invalid = problem_of(api.post("/courses", json={"id": "x"}), 422)
    assert {p["name"] for p in invalid["invalidParams"]} >= {"body.title", "body.category"}
    problem_of(api.post("/courses", json=course("bad:id")), 422)
    problem_of(api.post("/courses", json=course("c1", category="cooking")), 422)
    problem_of(api.get("/courses/a:b"), 422)
    problem_of(api.get("/courses", params={"status": "archived"}), 422)
    problem_of(api.get("/certifications", params={"limit": 0}), 422)
    problem_of(api.get("/certifications", params={"limit": "many"}), 422)
    problem_of(api.get("/certifications", params={"cursor": "garbage!"}), 422)
    problem_of(api.get("/analytics/courses", params={"cursor": "e30"}), 422)
    problem_of(api.get("/certifications/expiring", params={"days": 0}), 422)
    problem_of(api.get("/series/enrollments", params={"from": "yesterday"}), 422)
    problem_of(
        api.get("/series/enrollments", params={"from": "2020-01-01", "to": "2025-01-01"}), 422
    )
    problem_of(api.post("/certifications", json=certification("c", score=-5)), 422)
    problem_of(api.post("/certifications/x/claim", json={"claimedAt": "soon"}), 422)
    problem_of(api.post("/cache/invalidate", json={"courseId": "a*"}), 422)
    problem_of(api.get("/nowhere"), 404)
    problem_of(api.delete("/overview"), 405)


def test_hostile_bodies_are_refused_not_crashed_on(api: httpx.Client) -> None:
    json_headers = {"content-type": "application/json"}
    deep = b"[" * 100_000 + b"]" * 100_000  # deeper than any parser's stack
    problem_of(api.post("/events", content=deep, headers=json_headers), 400)
    problem_of(api.post("/events", content=b'{"a":' * 50_000 + b"1" + b"}" * 50_000), 400)
    problem_of(api.post("/courses", content=deep, headers=json_headers), 400)
    lines = api.post(
        "/events", content=deep + b"\n", headers={"content-type": "application/x-ndjson"}
    )
    assert lines.json()["results"][0]["status"] == "rejected"
    lone_surrogate = b'[{"kind": "enrollment", "userId": "\\ud800", "courseId": "c1"}]'
    # Text no server can be sent refuses its own event, as any other bad event in a batch.
    refused = api.post("/events", content=lone_surrogate, headers=json_headers)
    assert refused.status_code == 200
    assert refused.json()["results"][0]["error"] == "InvalidIdError"
    course_body = b'{"id": "\\ud800", "title": {"en": "x"}, "category": "sales"}'
    problem_of(api.post("/courses", content=course_body, headers=json_headers), 422)
    for dates in ({"to": "0001-01-05"}, {"from": "9999-12-30", "to": "9999-12-31"}):
        problem_of(api.get("/series/enrollments", params=dates), 422)


def test_bodies_and_batches_over_the_limits(api: httpx.Client) -> None:
    big = b"[" + b" " * (16 * 1024 * 1024) + b"]"
    problem_of(api.post("/events", content=big, headers={"content-type": "application/json"}), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b"["
        for _ in range(17):
            yield b" " * (1024 * 1024)
        yield b"]"

    streamed = api.post("/events", content=chunks(), headers={"content-type": "application/json"})
    problem_of(streamed, 413)
    events = [{"kind": "enrollment", "userId": f"u{n}", "courseId": "c1"} for n in range(10_001)]
    too_many = problem_of(api.post("/events", json=events), 413)
    assert "10000" in too_many["detail"]
    assert api.post("/events", json=events[:10_000]).json()["applied"] == 10_000


# --- the CLI -------------------------------------------------------------------------------------


def test_keys_cli_and_serve_refusing_the_network_without_keys(
    redis_url: str, client: redis.Redis, service: ServiceProcess, tmp_path: Path
) -> None:
    env = {"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin", "COLUMNS": "200"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "training_analytics", *args]
        return subprocess.run(
            command, check=False, env=env, capture_output=True, text=True, timeout=60
        )

    created = cli("keys", "create", "--role", "ingest", "--name", "loader")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert created.stdout == key + "\n" and key.startswith("ta_")
    listed = cli("keys", "list")
    assert "loader" in listed.stdout and "ingest" in listed.stdout and key not in listed.stdout
    reply = httpx.post(
        service.base + "/api/v1/events", json=[], headers={"Authorization": f"Bearer {key}"}
    )
    assert reply.status_code == 200
    assert "loader" in cli("keys", "list").stdout
    assert cli("keys", "revoke", "loader").returncode == 0
    reply = httpx.post(
        service.base + "/api/v1/events", json=[], headers={"Authorization": f"Bearer {key}"}
    )
    assert reply.status_code == 401
    missing = cli("keys", "revoke", "loader")
    assert missing.returncode == 1 and "no API key named" in missing.stderr
    assert cli("keys", "create", "--role", "root").returncode == 2
    # No key under this prefix: listening beyond loopback is refused.
    refused = cli("--prefix", "empty:", "serve", "--host", "0.0.0.0", "--port", "1")
    assert refused.returncode == 1 and "no API key exists" in refused.stderr
    assert client.keys("empty:*") == []


def test_problem_bodies_never_carry_the_key(api: httpx.Client, keys: dict[str, str]) -> None:
    wrong = keys["admin"][:-1] + ("A" if not keys["admin"].endswith("A") else "B")
    reply = api.get("/overview", headers={"Authorization": f"Bearer {wrong}"})
    assert wrong not in reply.text and problem_of(reply, 401)["detail"] == "unknown API key"


def test_json_is_camel_case(api: httpx.Client) -> None:
    body = api.get("/credentials/analytics").json()
    assert set(body) == {
        "totalIssued",
        "totalClaimed",
        "claimRate",
        "averageClaimTimeHours",
        "pending",
        "expiringIn30Days",
    }
    assert json.loads(api.get("/certifications").text) == {"items": [], "nextCursor": None}


def test_cors_allows_only_the_configured_origins(
    redis_url: str, keys: dict[str, str], tmp_path: Path
) -> None:
    server = ServiceProcess(
        redis_url, tmp_path / "cors.log", "--cors-origin", "https://app.example"
    )
    try:
        headers = {"Authorization": f"Bearer {keys['viewer']}"}
        allowed = httpx.get(
            server.base + "/api/v1/overview", headers={**headers, "Origin": "https://app.example"}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = httpx.get(
            server.base + "/api/v1/overview", headers={**headers, "Origin": "https://evil.example"}
        )
        assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    finally:
        assert server.terminate() == 0


def test_serve_demo_with_two_workers(redis_url: str, tmp_path: Path) -> None:
    """`serve --demo --workers 2`: the demo is loaded first, a key is created and printed once,
    and /metrics counts the requests whichever worker served them."""
    log = tmp_path / "demo.log"
    server = ServiceProcess(redis_url, log, "--prefix", "demo:", "--demo", "--workers", "2")
    try:
        printed = [line for line in server.output().splitlines() if line.startswith("ta_")]
        assert len(printed) == 1
        headers = {"Authorization": f"Bearer {printed[0]}"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as http:
            for _ in range(20):
                overview = http.get("/api/v1/overview").json()
                assert overview["totalCourses"] == 8 and overview["totalEnrollments"] > 0
            text = http.get("/metrics").text
        counted = 'route="/api/v1/overview",status="200"} 20.0'  # over both workers' files
        assert counted in text
        assert f"Serving {server.base}/api/v1" in server.output()
    finally:
        assert server.terminate() == 0
    assert printed[0] not in log.read_text().replace(printed[0], "", 1)  # printed once


def test_metrics_port_serves_metrics_without_a_key(
    redis_url: str, keys: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    server = ServiceProcess(redis_url, tmp_path / "m.log", "--metrics-port", str(port))
    try:
        headers = {"Authorization": f"Bearer {keys['viewer']}"}
        assert httpx.get(server.base + "/api/v1/overview", headers=headers).status_code == 200
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'route="/api/v1/overview",status="200"} 1.0' in text
        assert httpx.get(server.base + "/metrics").status_code == 401  # the API's still needs one
    finally:
        assert server.terminate() == 0


def test_a_burst_past_the_client_pool_queues_instead_of_failing(
    service: ServiceProcess, keys: dict[str, str]
) -> None:
    """400 requests at once (redis-py's pool holds 100 connections by default): every one is
    answered, none with 503."""

    async def burst() -> list[int]:
        headers = {"Authorization": f"Bearer {keys['viewer']}"}
        limits = httpx.Limits(max_connections=400)
        async with httpx.AsyncClient(
            base_url=service.base, headers=headers, limits=limits, timeout=120
        ) as http:
            replies = await asyncio.gather(*(http.get("/api/v1/overview") for _ in range(400)))
        return [reply.status_code for reply in replies]

    assert set(asyncio.run(burst())) == {200}


def test_serve_takes_the_zone_the_store_was_written_in(
    client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """Without --tz, serve reads and writes day buckets in the store's recorded zone, as every
    other command does: a store written in Madrid days is not served (nor written) in UTC."""
    madrid = ta.TrainingAnalytics(client, tz="Europe/Madrid")
    madrid.record_enrollment("u1", "c1", at="2025-06-01T23:30:00Z")  # 2 June in Madrid
    key = madrid.create_api_key("zone-admin", "admin").key
    server = ServiceProcess(redis_url, tmp_path / "serve.log")
    try:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.base + "/api/v1", headers=headers, timeout=30) as api:
            event = {"kind": "enrollment", "userId": "u2", "courseId": "c1"}
            event["at"] = "2025-06-02T10:00:00Z"
            reply = api.post("/events", json=[event]).json()
            assert reply["results"][0]["status"] == "applied", reply
            series = api.get(
                "/series/enrollments",
                params={"from": "2025-06-01", "to": "2025-06-02", "courseId": "c1"},
            ).json()
        assert [p["count"] for p in series["points"]] == [0, 2]
    finally:
        server.terminate()
