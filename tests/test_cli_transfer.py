"""``training-analytics import`` and ``export`` against the test server (``--url``).

In-process runs use Typer's CliRunner; the piped-stdin and terminal cases run the real command
in a subprocess (a pipe, then a pseudo-terminal), as a user would.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from typer.testing import CliRunner

import training_analytics as ta
from training_analytics.cli import EXIT_REJECTED, app

from .factories import NOW, course
from .stores import SEED_DATA
from .test_statements import expected_events, real_world
from .test_transfer import answers, build_store

runner = CliRunner()
_SOURCE_ROOT = str(Path(ta.__file__).resolve().parents[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SOURCE_ROOT, env.get("PYTHONPATH")]))
    return env


def _facade(client: redis.Redis, prefix: str = "") -> ta.TrainingAnalytics:
    return ta.TrainingAnalytics(client, prefix=prefix, clock=lambda: NOW)


def test_export_then_import_into_another_prefix_answers_the_same(
    client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    original = _facade(client)
    build_store(original)
    dump = tmp_path / "store.jsonl"
    result = runner.invoke(app, ["export", "--url", redis_url, "-o", str(dump)])
    assert result.exit_code == 0, result.output
    assert "Exported 98 records" in result.stderr
    lines = dump.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 98
    assert {json.loads(line)["kind"] for line in lines} == {
        "course",
        "enrollment",
        "completion",
        "module_start",
        "module_completion",
        "progress",
        "certification_issued",
    }
    assert not list(tmp_path.glob(".export-*")), "the temporary file was left behind"
    assert dump.stat().st_mode & 0o777 == 0o600  # learners' names and e-mails
    # The same records on stdout.
    piped = runner.invoke(app, ["export", "--url", redis_url])
    assert piped.exit_code == 0, piped.output
    assert piped.stdout.splitlines() == lines

    result = runner.invoke(app, ["--prefix", "copy:", "import", str(dump), "--url", redis_url])
    assert result.exit_code == 0, result.output
    assert "Imported 98 lines" in result.stdout
    assert "98 applied, 0 unchanged, 0 rejected" in result.stdout
    expected = answers(original)
    assert answers(_facade(client, "copy:")) == expected

    # And into the same store, flushed.
    client.flushdb()
    result = runner.invoke(app, ["import", str(dump), "--url", redis_url])
    assert result.exit_code == 0, result.output
    assert answers(_facade(client)) == expected


def test_import_reports_bad_lines_by_number_and_imports_the_others(
    client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    good = {"kind": "enrollment", "userId": "u1", "courseId": "c1", "at": "2025-06-01T10:00:00Z"}
    lines = [
        json.dumps({"kind": "course", "course": course("c1")}),
        json.dumps(good),
        "{not json",
        "",  # blank lines are skipped, not counted
        "[1, 2]",
        json.dumps({**good, "userId": "a:b"}),
        "x" * 5000,  # over the --max-line-bytes given below: refused unread
        json.dumps({"kind": "certification_status", "certId": "nope", "newStatus": "claimed"}),
        json.dumps({**good, "kind": "completion", "at": "2025-06-02T10:00:00Z"}),
        json.dumps(good),  # a replay
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(
        app,
        ["import", str(path), "--url", redis_url, "--json", "--max-line-bytes", "4096"],
    )
    assert result.exit_code == EXIT_REJECTED, result.output
    assert json.loads(result.stdout) == {
        "lines": 9,
        "applied": 3,
        "unchanged": 1,
        "rejected": 5,
        "seconds": json.loads(result.stdout)["seconds"],
    }
    reported = [line.split(":", 2)[:2] for line in result.stderr.splitlines()]
    assert reported == [
        ["line 3", " InvalidInputError"],
        ["line 5", " InvalidInputError"],
        ["line 6", " InvalidIdError"],
        ["line 7", " InvalidInputError"],
        ["line 8", " CertificationNotFoundError"],
    ]
    assert "longer than 4,096 bytes" in result.stderr
    analytics = _facade(client)
    assert analytics.get_course_completions("c1") == ["u1"]
    assert analytics.get_training_course("c1") is not None


def test_import_csv(client: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    progress = json.dumps({"userId": "u2", "courseId": "c1", "overallScore": 75}).replace('"', '""')
    path = tmp_path / "events.csv"
    path.write_text(
        "kind,user_id,courseId,moduleId,at,progress\n"
        "enrollment,u2,c1,,2025-06-01T10:00:00Z,\n"
        "module_completion,u2,c1,m1,,\n"
        f'progress,,,,,"{progress}"\n'
        "enrollment,u3\n"
        "progress,,,,,{bad\n"
        "enrollment,u4,c1,,not a date,\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["import", str(path), "--url", redis_url])
    assert result.exit_code == EXIT_REJECTED, result.output
    assert "5 lines" not in result.stdout  # the header is not a record
    assert "6 lines" in result.stdout
    assert "3 applied, 0 unchanged, 3 rejected" in result.stdout
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == [
        "line 5",
        "line 6",
        "line 7",
    ]
    analytics = _facade(client)
    assert analytics.get_course_enrollments("c1") == ["u2"]
    assert analytics.get_module_dropoff_rate("c1", "m1") == 0
    saved = analytics.get_user_course_progress_data("u2", "c1")
    assert saved is not None and saved.overall_score == 75


def test_import_refuses_what_it_cannot_read(
    client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    header = tmp_path / "bad.csv"
    header.write_text("kind,colour\nenrollment,red\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(header), "--url", redis_url])
    assert result.exit_code == 2
    assert "unknown CSV column(s) colour" in result.stderr
    missing = runner.invoke(app, ["import", str(tmp_path / "none.jsonl"), "--url", redis_url])
    assert missing.exit_code == 2 and "cannot read" in missing.stderr
    unknown = tmp_path / "events.txt"
    unknown.write_text("{}\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(unknown), "--url", redis_url])
    assert result.exit_code == 2 and "--format" in result.stderr
    forced = runner.invoke(app, ["import", str(unknown), "--format", "jsonl", "--url", redis_url])
    assert forced.exit_code == EXIT_REJECTED  # read as JSON Lines: {} is not an event
    assert "line 1: InvalidInputError" in forced.stderr
    assert client.dbsize() == 0


def test_export_to_a_file_leaves_nothing_when_the_store_is_unreachable(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("previous export\n", encoding="utf-8")
    result = runner.invoke(app, ["export", "--url", "redis://127.0.0.1:1", "-o", str(target)])
    assert result.exit_code == 2
    assert target.read_text(encoding="utf-8") == "previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def _enrolments(n: int) -> bytes:
    return "".join(
        json.dumps({"kind": "enrollment", "userId": f"u{i}", "courseId": "c1"}) + "\n"
        for i in range(n)
    ).encode()


def test_import_from_a_pipe_is_quiet(client: redis.Redis, redis_url: str) -> None:
    data = _enrolments(2500) + b"oops\n"
    done = subprocess.run(
        [sys.executable, "-m", "training_analytics", "import", "-", "--url", redis_url],
        input=data,
        capture_output=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == EXIT_REJECTED, done.stderr
    # No progress bar when stderr is not a terminal: only the rejected line.
    assert done.stderr.decode().splitlines() == [
        "line 2501: InvalidInputError: not JSON: Expecting value: line 1 column 1 (char 0)"
    ]
    assert "2,501 lines" in done.stdout.decode()
    assert _facade(client).get_course_enrollment_count("c1") == 2500


def test_import_shows_a_progress_bar_on_a_terminal(
    client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(_enrolments(3000))
    leader, follower = pty.openpty()
    env = _env() | {"COLUMNS": "120", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    with subprocess.Popen(
        [sys.executable, "-m", "training_analytics", "import", str(path), "--url", redis_url],
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
    ) as process:
        os.close(follower)
        seen = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        process.wait(timeout=60)
        os.close(leader)
        assert process.stdout is not None
        summary = process.stdout.read().decode()
    assert process.returncode == 0, seen
    assert b"Importing" in seen
    assert b"\x1b[" in seen  # drawn, then cleared
    assert "3,000 applied" in summary
    assert _facade(client).get_course_enrollment_count("c1") == 3000


def test_an_interrupted_import_says_how_far_it_got(client: redis.Redis, redis_url: str) -> None:
    """Ctrl-C while the import waits for more input: exit 130, and the lines applied so far."""
    with subprocess.Popen(
        [sys.executable, "-m", "training_analytics", "import", "-", "--url", redis_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    ) as process:
        assert process.stdin is not None and process.stderr is not None
        process.stdin.write(_enrolments(10_005))  # ten full batches, and 5 lines of the next
        process.stdin.flush()
        analytics = _facade(client)
        deadline = time.monotonic() + 60
        # The ten batches applied and the store's zone recorded; the command waits for input,
        # the last batch's outcome not read yet: Ctrl-C reads it before saying how far it got.
        zone = analytics.keys.time_zone_marker()
        while analytics.get_course_enrollment_count("c1") < 10_000 or not client.exists(zone):
            assert time.monotonic() < deadline, "the first batches were never applied"
            time.sleep(0.05)
        # The store shows the batches a moment before the command has read their outcomes: on
        # a loaded machine a signal sent at once can land in between, and the command rightly
        # says less. Let it get back to reading first.
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "lines 1-10,000 were imported (10,000 applied, 0 unchanged, 0 rejected)" in (
        stderr.decode()
    )
    assert analytics.get_course_enrollment_count("c1") == 10_000


@SEED_DATA
def test_import_into_an_unindexed_store_says_reindex(
    client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    # An enrolment as the older system wrote it: base keys, no index marker.
    client.sadd("training:enrollments:c1", "old")
    client.zadd("training:enrollment:timeseries", {"1718000000000:old:c1": 1718000000000})
    path = tmp_path / "events.jsonl"
    path.write_bytes(_enrolments(3))
    result = runner.invoke(app, ["import", str(path), "--url", redis_url])
    assert result.exit_code == 2, result.output
    assert "training-analytics reindex" in result.stderr
    assert "Traceback" not in result.output
    assert client.smembers("training:enrollments:c1") == {"old"}


def test_import_format_xapi_maps_statements_as_the_api_does(
    client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """``import --format xapi``: JSON lines of statements through the xAPI mapping; a bad line
    is reported with its number (exit 3), the rest imported; a second import counts once."""
    statements = real_world()
    good = "\n".join(json.dumps(s) for s in statements)
    path = tmp_path / "statements.jsonl"
    path.write_text(good + "\n{not json\n", encoding="utf-8")
    args = ["import", "--url", redis_url, "--format", "xapi", "--json", str(path)]
    first = runner.invoke(app, args)
    assert first.exit_code == EXIT_REJECTED, first.output
    summary = json.loads(first.stdout)
    assert summary["read"] == len(statements) + 1
    assert [r["position"] for r in summary["rejected"]] == [len(statements) + 1]
    assert f"statement {len(statements) + 1}:" in first.stderr
    # The same analytics as the events written by hand through record_many, in another prefix.
    events = expected_events()
    by_hand = _facade(client, "by-hand:")
    by_hand.record_many(events)
    imported = _facade(client)
    courses = {event.course_id for event in events if hasattr(event, "course_id")}
    assert len(courses) >= 2
    for course_id in sorted(courses):
        assert imported.get_course_detailed_analytics(course_id) == (
            by_hand.get_course_detailed_analytics(course_id)
        )
    assert imported.get_credential_stats() == by_hand.get_credential_stats()
    again = runner.invoke(app, args)
    assert json.loads(again.stdout)["duplicates"] == len(statements)
