"""The HTTP service on a cluster: a real ``training-analytics serve`` process whose store is the
session's cluster (``REDIS_URL=redis+cluster://...``), against the same operations on the suite's
single server.

Every route calls the facade: what runs on a cluster answers as on one server (API keys,
events, per-course analytics and funnel, progress, certificates by id, xAPI statements, the
catalog), and so do the global figures, listings and the version poll, after the key was
checked. ``serve --demo`` loads the demo through the cluster's write path,
``readyz`` reports the cluster, and no password or key reaches the log.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis
import redis.cluster

import training_analytics as ta
from training_analytics.cluster.local import ClusterControl, LocalCluster
from training_analytics.demo import DEMO_COURSE_IDS, load_demo

from . import xapi_statements as x
from .cluster import _port_range
from .factories import certification, course
from .service_process import ServiceProcess
from .test_statements import real_world

PROBLEM = "application/problem+json"
SECRET = "s3cret-Cluster-Pa55"
XAPI_VERSION = {"X-Experience-API-Version": "1.0.3"}


@pytest.fixture(scope="module")
def service(cluster_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    server = ServiceProcess(cluster_url, tmp_path_factory.mktemp("cluster-serve") / "serve.log")
    yield server
    assert server.terminate() == 0


@pytest.fixture
def keys(cluster_client: redis.cluster.RedisCluster) -> dict[str, str]:
    """A fresh key per role on the flushed cluster."""
    admin = ta.TrainingAnalytics(cluster_client)
    return {role: admin.create_api_key(role, role).key for role in ("viewer", "ingest", "admin")}


@pytest.fixture
def api(service: ServiceProcess, keys: dict[str, str]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {keys['admin']}"}
    with httpx.Client(base_url=service.base + "/api/v1", headers=headers, timeout=30) as http:
        yield http


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"]
    return body


def _history() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for n in range(12):
        user = f"u{n}"
        at = f"2025-06-0{1 + n % 9}T10:00:00.000Z"
        events.append({"kind": "enrollment", "userId": user, "courseId": "c1", "at": at})
        events.append(
            {"kind": "module_start", "userId": user, "courseId": "c1", "moduleId": "m1", "at": at}
        )
        if n % 2:
            events.append(
                {
                    "kind": "module_completion",
                    "userId": user,
                    "courseId": "c1",
                    "moduleId": "m1",
                    "at": at,
                }
            )
        if n % 3 == 0:
            events.append({"kind": "completion", "userId": user, "courseId": "c2", "at": at})
    return events


# --- readiness, keys ---------------------------------------------------------------------------


def test_readyz_reports_the_cluster(service: ServiceProcess, cluster: ClusterControl) -> None:
    ready = httpx.get(service.base + "/readyz", timeout=30)
    assert ready.status_code == 200
    nodes = len(cluster.nodes())
    assert ready.json() == {
        "status": "ready",
        "cluster": {"state": "ok", "nodes": nodes, "reachable": nodes, "unreachable": []},
    }


def test_a_key_is_verified_on_every_request_and_revoked_at_once(
    service: ServiceProcess, keys: dict[str, str], cluster_client: redis.cluster.RedisCluster
) -> None:
    with httpx.Client(base_url=service.base + "/api/v1", timeout=30) as http:
        assert http.get("/courses/c1", headers=bearer(keys["viewer"])).status_code == 404
        assert problem_of(http.get("/courses/c1"), 401)["detail"] == "an API key is required"
        unknown = problem_of(http.get("/courses/c1", headers=bearer("ta_" + "x" * 43)), 401)
        assert "x" * 43 not in unknown["detail"]
        refused = http.post("/courses", json=course("c9"), headers=bearer(keys["viewer"]))
        assert problem_of(refused, 403)["detail"] == "this needs the admin role; the key has viewer"
        ta.TrainingAnalytics(cluster_client).revoke_api_key("viewer")
        problem_of(http.get("/courses/c1", headers=bearer(keys["viewer"])), 401)
        [listed] = [
            k for k in ta.TrainingAnalytics(cluster_client).list_api_keys() if k.name == "admin"
        ]
        assert listed.last_used_at is None  # the admin key was not used
        assert http.get("/courses/c1", headers=bearer(keys["admin"])).status_code == 404
        [listed] = [
            k for k in ta.TrainingAnalytics(cluster_client).list_api_keys() if k.name == "admin"
        ]
        assert listed.last_used_at is not None


# --- what runs on a cluster answers as on one server -------------------------------------------


def test_events_and_per_course_reads_answer_as_on_one_server(
    api: httpx.Client, keys: dict[str, str], client: redis.Redis
) -> None:
    single = ta.TrainingAnalytics(client)
    for course_id in ("c1", "c2"):
        assert api.post("/courses", json=course(course_id, modules=2)).status_code == 201
        single.create_training_course(course(course_id, modules=2))
    events = _history()
    reply = api.post("/events", json=events, headers=bearer(keys["ingest"]))
    assert reply.status_code == 200, reply.text
    assert reply.json()["applied"] == len(events)
    assert single.record_many(events).applied == len(events)
    viewer = bearer(keys["viewer"])
    for course_id in ("c1", "c2"):
        analytics = api.get(f"/courses/{course_id}/analytics", headers=viewer)
        assert analytics.status_code == 200, analytics.text
        expected = single.get_course_detailed_analytics(course_id).model_dump(
            mode="json", by_alias=True
        )
        assert analytics.json() == expected
        funnel = api.get(f"/courses/{course_id}/funnel", headers=viewer).json()
        assert funnel == [
            step.model_dump(mode="json", by_alias=True)
            for step in single.get_course_module_funnel(course_id)
        ]
    problem_of(api.get("/progress/u1/c1", headers=viewer), 404)
    progress = {"status": "in_progress", "overallScore": 75, "startedAt": "2025-06-01T10:00:00Z"}
    saved = api.put("/progress/u1/c1", json=progress, headers=bearer(keys["ingest"]))
    assert saved.status_code == 200, saved.text
    single.save_user_course_progress({**progress, "userId": "u1", "courseId": "c1"})
    stored = single.get_user_course_progress_data("u1", "c1")
    assert stored is not None
    got = api.get("/progress/u1/c1", headers=viewer).json()
    assert got == stored.model_dump(mode="json", by_alias=True)
    # A write shows in the next answer (nothing kept stale).
    api.post("/events", json=[{"kind": "enrollment", "userId": "new", "courseId": "c1"}])
    after = api.get("/courses/c1/analytics", headers=viewer).json()
    assert after["enrollments"] == expected_enrollments(single, "c1") + 1
    problem_of(api.get("/courses/nope/analytics", headers=viewer), 404)


def expected_enrollments(single: ta.TrainingAnalytics, course_id: str) -> int:
    return single.get_course_detailed_analytics(course_id).enrollments


def test_catalog_and_certificates_by_id(api: httpx.Client) -> None:
    assert api.post("/courses", json=course("c1")).status_code == 201
    assert api.post("/courses/c1/publish").json()["isPublished"] is True
    assert api.get("/courses/c1").json()["id"] == "c1"
    issued = api.post(
        "/certifications", json=certification("cert-7", expiresAt="2040-01-01T00:00:00.000Z")
    )
    assert issued.status_code == 201, issued.text
    claimed = api.post("/certifications/cert-7/claim")
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["status"] == "claimed"
    assert api.get("/certifications/cert-7").json()["status"] == "claimed"
    problem_of(api.get("/certifications/nope"), 404)
    assert api.delete("/courses/c1").status_code == 204


def test_xapi_statements_give_the_analytics_of_one_server(
    service: ServiceProcess, keys: dict[str, str], client: redis.Redis
) -> None:
    statements = real_world()
    token = base64.b64encode(f"ingest:{keys['ingest']}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", **XAPI_VERSION}
    with httpx.Client(base_url=service.base, headers=headers, timeout=30) as http:
        posted = http.post("/xapi/statements", json=statements)
        assert posted.status_code == 200, posted.text
        assert posted.json() == [s["id"] for s in statements]
        assert http.post("/xapi/statements", json=statements).status_code == 200  # again: once
        changed = x.edx_enrollment(statements[0]["id"], "someone-else", "2025-03-01T10:00:00Z")
        assert http.post("/xapi/statements", json=[changed]).status_code == 409
        wrong_name = base64.b64encode(f"admin:{keys['ingest']}".encode()).decode()
        problem_of(
            http.post(
                "/xapi/statements",
                json=statements[:1],
                headers={"Authorization": f"Basic {wrong_name}"},
            ),
            401,
        )
        viewer = bearer(keys["viewer"])
        from .test_statements import prepared  # noqa: PLC0415 - the same preparation

        single = ta.TrainingAnalytics(client)
        single.record_statements(prepared(statements))
        for course_id in (x.EDX_COURSE_ID, "safety-101"):
            path = f"/api/v1/courses/{quote(course_id, safe='')}/analytics"
            got = http.get(path, headers=viewer)
            assert got.status_code == 200, got.text
            assert got.json() == single.get_course_detailed_analytics(course_id).model_dump(
                mode="json", by_alias=True
            )


# --- the global figures and listings: after the key ---------------------------------------------

#: Routes whose answers are sums or merges over courses and buckets.
GLOBAL_ROUTES = [
    ("GET", "/overview"),
    ("GET", "/analytics/courses"),
    ("GET", "/series/enrollments"),
    ("GET", "/credentials/analytics"),
    ("GET", "/certifications"),
    ("GET", "/certifications/stats"),
    ("GET", "/certifications/expiring"),
    ("GET", "/courses"),
    ("GET", "/version"),
    ("POST", "/cache/invalidate"),
]


@pytest.mark.parametrize(("method", "path"), GLOBAL_ROUTES)
def test_a_global_route_answers_on_a_cluster_after_the_key(
    api: httpx.Client, keys: dict[str, str], method: str, path: str
) -> None:
    key = keys["admin"] if method == "POST" else keys["viewer"]
    problem_of(api.request(method, path, headers=bearer("ta_" + "y" * 43)), 401)
    reply = api.request(method, path, headers=bearer(key))
    assert reply.status_code == 200, reply.text


def test_the_dashboard_is_served_and_its_version_poll_answers(
    service: ServiceProcess, keys: dict[str, str]
) -> None:
    page = httpx.get(service.base + "/", timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()
    poll = httpx.get(service.base + "/api/v1/version", headers=bearer(keys["viewer"]), timeout=30)
    assert poll.status_code == 200 and poll.headers["ETag"]


# --- serve --demo, and a password in the URL ---------------------------------------------------


def test_serve_demo_loads_through_the_cluster_write_path(
    cluster_url: str,
    cluster_client: redis.cluster.RedisCluster,
    client: redis.Redis,
    tmp_path: Path,
) -> None:
    log = tmp_path / "demo.log"
    server = ServiceProcess(cluster_url, log, "--demo")
    try:
        printed = [line for line in server.output().splitlines() if line.startswith("ta_")]
        assert len(printed) == 1
        single = ta.TrainingAnalytics(client)
        load_demo(single)
        with httpx.Client(base_url=server.base, headers=bearer(printed[0]), timeout=30) as http:
            for course_id in sorted(DEMO_COURSE_IDS):
                got = http.get(f"/api/v1/courses/{course_id}/analytics")
                assert got.status_code == 200, got.text
                expected = single.get_course_detailed_analytics(course_id)
                assert got.json() == expected.model_dump(mode="json", by_alias=True)
                assert expected.enrollments > 0 or course_id not in _with_learners(single)
    finally:
        assert server.terminate() == 0
    assert printed[0] not in log.read_text().replace(printed[0], "", 1)  # printed once
    # Started again on the loaded cluster: --demo loads nothing more.
    again = ServiceProcess(cluster_url, tmp_path / "again.log", "--demo")
    try:
        assert "The store holds training data already" in again.output()
    finally:
        assert again.terminate() == 0


def _with_learners(single: ta.TrainingAnalytics) -> set[str]:
    return {c for c in DEMO_COURSE_IDS if single.get_course_enrollment_count(c)}


@pytest.fixture(scope="module")
def guarded_cluster() -> Iterator[LocalCluster]:
    with LocalCluster(2, 0, port_range=_port_range(), password=SECRET) as local:
        yield local


def test_serve_on_a_password_cluster_url_never_shows_the_password(
    guarded_cluster: LocalCluster, tmp_path: Path
) -> None:
    url = f"redis+cluster://default:{SECRET}@{guarded_cluster.seeds[0]}"
    log = tmp_path / "serve.log"
    server = ServiceProcess(url, log)
    try:
        printed = [line for line in server.output().splitlines() if line.startswith("ta_")]
        assert len(printed) == 1
        with httpx.Client(base_url=server.base, headers=bearer(printed[0]), timeout=30) as http:
            assert http.get("/readyz").json()["cluster"]["state"] == "ok"
            assert http.get("/api/v1/courses/c1/analytics").status_code == 404
            overview = http.get("/api/v1/overview")
            assert overview.status_code == 200
            assert SECRET not in overview.text
    finally:
        assert server.terminate() == 0
    text = log.read_text()
    assert SECRET not in text
    assert text.count(printed[0]) == 1
