"""A migration's mixed history, imported three ways (``bench --only ingest-mixed``, issue 13).

One generated history (``bench/mixed.py``: 20 courses of 8 modules, every event kind, in time
order) is written once as JSON Lines, the import format, and loaded in the same run:

(a) ``record_many(events, stream=True)`` from dicts parsed with ``json.loads``, in one process
    (parsing timed on its own and inside the end-to-end figure);
(b) ``training-analytics import FILE`` in a child process: the default, ``--jobs 2`` and
    ``--jobs 3`` when the installed command has that option, and the replay of the same file
    (which must change nothing);
(c) DuckDB: ``read_json`` of the file into a table (in memory, and into a database file for its
    size on disk), and pyarrow's JSON reader into an Arrow table that DuckDB copies.

Before any figure counts, the library's answers (facade calls) must equal DuckDB's SQL over the
file, and the stores of (a) and (b) must answer alike: a difference raises MismatchError.

Then, per event kind, each kind's events are loaded after all the other kinds' (in context, as
they meet an existing store), through (a) and (b), with client and server CPU per event; and the
memory the history takes (bytes per learner-course, per key family) is set against DuckDB's
table and the file, under the default encodings and under larger listpack/intset thresholds.
Figures go to ``run.meta["ingest_mixed"]``.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.json as pa_json  # type: ignore[import-untyped]
import redis
from rich.table import Table

import training_analytics as ta

from ._redis import queue
from .baseline_seed import dropoff, math_round, percentage, round_decimals
from .mixed import MixedHistory, write_jsonl
from .service import _url_of
from .workloads import MismatchError

if TYPE_CHECKING:
    from .workloads import Bench

#: The clock of every read: after the history's end (late 2025), before most certificates
#: expire (a year after issue), so expired, expiring and live certificates all occur.
READ_NOW = datetime(2026, 3, 1, tzinfo=UTC)
KINDS = (
    "enrollment",
    "module_start",
    "module_completion",
    "progress",
    "completion",
    "certification_issued",
    "certification_status",
)
#: Lines parsed, then recorded, per step of path (a): memory stays bounded at any file size.
PARSE_CHUNK = 50_000
_MS_PER_HOUR = 3_600_000

# The file's columns, given rather than sniffed: read_json's sniffer samples the first lines
# only, where a time-ordered history holds no certificate yet.
_TS = "TIMESTAMP WITH TIME ZONE"
_MODULE_PROGRESS = (
    "STRUCT(moduleId VARCHAR, status VARCHAR, score BIGINT, attempts BIGINT, "
    f"timeSpentMinutes BIGINT, completedAt {_TS})[]"
)
DUCKDB_COLUMNS = {
    "kind": "VARCHAR",
    "userId": "VARCHAR",
    "courseId": "VARCHAR",
    "at": _TS,
    "moduleId": "VARCHAR",
    "progress": (
        f"STRUCT(userId VARCHAR, courseId VARCHAR, status VARCHAR, moduleProgress "
        f"{_MODULE_PROGRESS}, overallScore BIGINT, startedAt {_TS}, lastAccessedAt {_TS}, "
        f"totalTimeSpentMinutes BIGINT, completedAt {_TS})"
    ),
    "certification": (
        f"STRUCT(id VARCHAR, userId VARCHAR, courseId VARCHAR, courseName STRUCT(en VARCHAR), "
        f"userName VARCHAR, userEmail VARCHAR, status VARCHAR, issuedAt {_TS}, "
        f"expiresAt {_TS}, verificationCode VARCHAR, score BIGINT)"
    ),
    "certId": "VARCHAR",
    "newStatus": "VARCHAR",
    "claimedAt": _TS,
}

# read_json wants its columns as a constant: a struct literal, not a parameter.
_COLUMNS_LITERAL = "{" + ", ".join(f"'{k}': '{v}'" for k, v in DUCKDB_COLUMNS.items()) + "}"


def _arrow_schema() -> Any:
    ts = pa.timestamp("ms", tz="UTC")
    module = pa.struct(
        [
            ("moduleId", pa.string()),
            ("status", pa.string()),
            ("score", pa.int64()),
            ("attempts", pa.int64()),
            ("timeSpentMinutes", pa.int64()),
            ("completedAt", ts),
        ]
    )
    progress = pa.struct(
        [
            ("userId", pa.string()),
            ("courseId", pa.string()),
            ("status", pa.string()),
            ("moduleProgress", pa.list_(module)),
            ("overallScore", pa.int64()),
            ("startedAt", ts),
            ("lastAccessedAt", ts),
            ("totalTimeSpentMinutes", pa.int64()),
            ("completedAt", ts),
        ]
    )
    certification = pa.struct(
        [
            ("id", pa.string()),
            ("userId", pa.string()),
            ("courseId", pa.string()),
            ("courseName", pa.struct([("en", pa.string())])),
            ("userName", pa.string()),
            ("userEmail", pa.string()),
            ("status", pa.string()),
            ("issuedAt", ts),
            ("expiresAt", ts),
            ("verificationCode", pa.string()),
            ("score", pa.int64()),
        ]
    )
    return pa.schema(
        [
            ("kind", pa.string()),
            ("userId", pa.string()),
            ("courseId", pa.string()),
            ("at", ts),
            ("moduleId", pa.string()),
            ("progress", progress),
            ("certification", certification),
            ("certId", pa.string()),
            ("newStatus", pa.string()),
            ("claimedAt", ts),
        ]
    )


def course_record(course_id: str, modules: int, order: int) -> dict[str, Any]:
    """The catalog entry the funnel needs (modules m1..mN, in order)."""
    return {
        "id": course_id,
        "title": {"en": f"Course {course_id}"},
        "category": "sales",
        "isPublished": True,
        "certificateEnabled": True,
        "duration": 120,
        "order": order,
        "modules": [
            {"id": f"m{i + 1}", "title": {"en": f"Module {i + 1}"}, "order": i + 1}
            for i in range(modules)
        ],
    }


def create_courses(lib: ta.TrainingAnalytics, history: MixedHistory) -> None:
    for order, course_id in enumerate(history.course_ids()):
        lib.create_training_course(course_record(course_id, history.modules, order))


# --- the answers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CourseAnswers:
    enrollments: int
    completions: int
    completion_rate: float
    average_score: float
    average_time_to_complete: float
    funnel: tuple[tuple[str, int, int, float], ...]  # module, started, completed, drop-off


@dataclass(frozen=True)
class CertificateAnswers:
    total: int
    issued: int  # in force: issued and not yet expired
    claimed: int  # in force: claimed and not yet expired
    expired: int  # expired by status or by date
    revoked: int
    claimed_ever: int
    average_claim_time_hours: float
    expiring_in_30_days: int


@dataclass(frozen=True)
class Answers:
    courses: tuple[tuple[str, CourseAnswers], ...]
    certificates: CertificateAnswers


def library_answers(lib: ta.TrainingAnalytics, course_ids: Sequence[str]) -> Answers:
    """The questions asked through the facade, as a user of the library would."""
    courses = []
    for course_id in course_ids:
        detail = lib.get_course_detailed_analytics(course_id)
        funnel = lib.get_course_module_funnel(course_id)
        courses.append(
            (
                course_id,
                CourseAnswers(
                    enrollments=detail.enrollments,
                    completions=detail.completions,
                    completion_rate=detail.completion_rate,
                    average_score=detail.average_score,
                    average_time_to_complete=detail.average_time_to_complete,
                    funnel=tuple(
                        (s.module_id, s.started, s.completed, s.dropoff_rate) for s in funnel
                    ),
                ),
            )
        )
    stats = lib.get_credential_stats()
    claims = lib.get_credential_claim_analytics()
    return Answers(
        courses=tuple(courses),
        certificates=CertificateAnswers(
            total=claims.total_issued,
            issued=stats.issued,
            claimed=stats.claimed,
            expired=stats.expired,
            revoked=stats.revoked,
            claimed_ever=claims.total_claimed,
            average_claim_time_hours=claims.average_claim_time_hours,
            expiring_in_30_days=claims.expiring_in_30_days,
        ),
    )


# Per course: enrolled pairs (an enrolment, or a completion, which enrols), completed pairs, and
# the score and time figures of each enrolled learner's last saved progress (file order: rowid).
# The library counts a score above 0 and a time when completedAt is after startedAt.
COURSE_SQL = """
WITH enrolled AS (
    SELECT DISTINCT courseId, userId FROM {t} WHERE kind IN ('enrollment', 'completion')),
completed AS (SELECT DISTINCT courseId, userId FROM {t} WHERE kind = 'completion'),
last_progress AS (
    SELECT progress.courseId AS courseId, progress.userId AS userId,
           arg_max(progress, rowid) AS p
    FROM {t} WHERE kind = 'progress' GROUP BY ALL),
figures AS (
    SELECT l.courseId,
           count(*) FILTER (WHERE l.p.overallScore > 0) AS scored,
           coalesce(sum(l.p.overallScore) FILTER (WHERE l.p.overallScore > 0), 0) AS score_sum,
           count(*) FILTER (WHERE l.p.completedAt > l.p.startedAt) AS timed,
           coalesce(sum(epoch_ms(l.p.completedAt) - epoch_ms(l.p.startedAt))
                    FILTER (WHERE l.p.completedAt > l.p.startedAt), 0) AS ms
    FROM last_progress l JOIN enrolled USING (courseId, userId) GROUP BY ALL)
SELECT e.courseId, e.n, coalesce(c.n, 0), coalesce(f.scored, 0), coalesce(f.score_sum, 0),
       coalesce(f.timed, 0), coalesce(f.ms, 0)
FROM (SELECT courseId, count(*) AS n FROM enrolled GROUP BY ALL) e
LEFT JOIN (SELECT courseId, count(*) AS n FROM completed GROUP BY ALL) c USING (courseId)
LEFT JOIN figures f USING (courseId)
"""

# A module completion counts as a start too (the library adds the learner to both sets).
FUNNEL_SQL = """
SELECT courseId, moduleId,
       count(DISTINCT userId),
       count(DISTINCT userId) FILTER (WHERE kind = 'module_completion')
FROM {t} WHERE kind IN ('module_start', 'module_completion') GROUP BY ALL
"""

# A certificate's status is its issue record's, then its last status change in file order; a
# certificate issued or claimed whose expiry is at or before now counts as expired (the
# library's effective status). Status changes are taken as given: the library refuses illegal
# ones, and the phase checks that it refused none. Claimed ever: a claim, or a claimed issue.
CERTIFICATE_SQL = """
WITH issued AS (
    SELECT certification.id AS id, arg_min(certification, rowid) AS c
    FROM {t} WHERE kind = 'certification_issued' GROUP BY ALL),
moves AS (
    SELECT certId AS id, arg_max(newStatus, rowid) AS status,
           max(coalesce(claimedAt, "at")) FILTER (WHERE newStatus = 'claimed') AS claimed_at
    FROM {t} WHERE kind = 'certification_status' GROUP BY ALL),
certs AS (
    SELECT coalesce(m.status, i.c.status) AS status, i.c.issuedAt AS issued_at,
           i.c.expiresAt AS expires_at, m.claimed_at
    FROM issued i LEFT JOIN moves m USING (id)),
effective AS (
    SELECT CASE WHEN status IN ('issued', 'claimed') AND expires_at <= $now THEN 'expired'
                ELSE status END AS status, *
    FROM certs)
SELECT count(*),
       count(*) FILTER (WHERE status = 'issued'),
       count(*) FILTER (WHERE status = 'claimed'),
       count(*) FILTER (WHERE status = 'expired'),
       count(*) FILTER (WHERE status = 'revoked'),
       count(claimed_at),
       count(*) FILTER (WHERE claimed_at > issued_at),
       coalesce(sum(epoch_ms(claimed_at) - epoch_ms(issued_at))
                FILTER (WHERE claimed_at > issued_at), 0),
       count(*) FILTER (WHERE status IN ('issued', 'claimed')
                        AND expires_at > $now AND expires_at <= $horizon)
FROM effective
"""


def _int(value: object) -> int:
    return int(str(value))


def duckdb_answers(
    con: duckdb.DuckDBPyConnection, table: str, course_ids: Sequence[str], modules: int
) -> Answers:
    """The same questions in SQL over the file's rows, rounded as the older system rounds."""
    rows = {
        str(r[0]): [_int(v) for v in r[1:]]
        for r in con.execute(COURSE_SQL.format(t=table)).fetchall()
    }
    funnel: dict[tuple[str, str], tuple[int, int]] = {
        (str(r[0]), str(r[1])): (_int(r[2]), _int(r[3]))
        for r in con.execute(FUNNEL_SQL.format(t=table)).fetchall()
    }
    courses = []
    for course_id in course_ids:
        enrolled, completed, scored, score_sum, timed, ms = rows.get(course_id, [0] * 6)
        steps = []
        for i in range(modules):
            module_id = f"m{i + 1}"
            started, done = funnel.get((course_id, module_id), (0, 0))
            steps.append((module_id, started, done, dropoff(started, done)))
        courses.append(
            (
                course_id,
                CourseAnswers(
                    enrollments=enrolled,
                    completions=completed,
                    completion_rate=percentage(completed, enrolled),
                    average_score=math_round(score_sum / scored) if scored else 0,
                    average_time_to_complete=(
                        round_decimals(ms / timed / _MS_PER_HOUR, 1) if timed else 0
                    ),
                    funnel=tuple(steps),
                ),
            )
        )
    # An aggregate query returns one row.
    (cert,) = con.execute(
        CERTIFICATE_SQL.format(t=table),
        {"now": READ_NOW, "horizon": READ_NOW + timedelta(days=30)},
    ).fetchall()
    total, issued, claimed, expired, revoked, claimed_ever, timed, ms, soon = map(_int, cert)
    return Answers(
        courses=tuple(courses),
        certificates=CertificateAnswers(
            total=total,
            issued=issued,
            claimed=claimed,
            expired=expired,
            revoked=revoked,
            claimed_ever=claimed_ever,
            average_claim_time_hours=round_decimals(ms / timed / _MS_PER_HOUR, 1) if timed else 0,
            expiring_in_30_days=soon,
        ),
    )


def compare(question: str, ours: Answers, theirs: Answers, who: str) -> None:
    """MismatchError naming the first figure that differs (course and field, or certificates)."""
    if ours == theirs:
        return
    their_courses = dict(theirs.courses)
    if [c for c, _ in ours.courses] != list(their_courses):
        raise MismatchError(f"{question}: other courses than {who}'s")
    for course_id, mine in ours.courses:
        other = their_courses[course_id]
        for name, value in asdict(mine).items():
            if getattr(other, name) != value and name != "funnel":
                raise MismatchError(
                    f"{question}: {course_id} {name}: library answered {value!r}, "
                    f"{who} answered {getattr(other, name)!r}"
                )
        if mine.funnel != other.funnel:
            raise MismatchError(
                f"{question}: {course_id} module funnel: library answered {mine.funnel!r}, "
                f"{who} answered {other.funnel!r}"
            )
    raise MismatchError(
        f"{question}: certificates: library answered {ours.certificates!r}, "
        f"{who} answered {theirs.certificates!r}"
    )


# --- measuring -------------------------------------------------------------------------------


def server_cpu(client: redis.Redis) -> float:
    """CPU seconds the server has used, user + system (INFO cpu)."""
    cpu: dict[str, Any] = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def used_memory(client: redis.Redis) -> int:
    info: dict[str, Any] = client.info("memory")
    return int(info["used_memory"])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Load:
    """One load of events: how long, what it cost on each side, what the library said."""

    events: int
    seconds: float
    client_cpu: float
    server_cpu: float
    applied: int = 0
    unchanged: int = 0
    rejected: int = 0
    parse_seconds: float = 0.0  # path (a): json.loads of the lines, inside ``seconds``
    parse_cpu: float = 0.0
    reported_seconds: float | None = None  # path (b): the import's own clock (no start-up)

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events / self.seconds) if self.seconds else None,
            "client_cpu_us_per_event": round(self.client_cpu / self.events * 1e6, 2),
            "server_cpu_us_per_event": round(self.server_cpu / self.events * 1e6, 2),
            "applied": self.applied,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }
        if self.parse_seconds:
            ingest = self.seconds - self.parse_seconds
            out["parse_seconds"] = round(self.parse_seconds, 3)
            out["parse_cpu_us_per_event"] = round(self.parse_cpu / self.events * 1e6, 2)
            out["ingest_seconds"] = round(ingest, 3)
            out["ingest_events_per_second"] = round(self.events / ingest)
        if self.reported_seconds is not None:
            out["reported_seconds"] = self.reported_seconds
            out["reported_events_per_second"] = (
                round(self.events / self.reported_seconds) if self.reported_seconds else None
            )
        return out


def _lines(path: Path) -> Iterator[list[bytes]]:
    with path.open("rb") as source:
        while chunk := list(islice(source, PARSE_CHUNK)):
            yield chunk


def record_parsed(client: redis.Redis, lib: ta.TrainingAnalytics, path: Path) -> Load:
    """Path (a): read and json.loads the file chunk by chunk, each chunk to record_many(stream).

    Chunks keep memory bounded at any size; the parse time is summed on its own.
    """
    load = Load(0, 0.0, 0.0, 0.0)
    server_before = server_cpu(client)
    for lines in _lines(path):
        start, cpu = time.perf_counter(), time.process_time()
        events = [json.loads(line) for line in lines]
        parsed, parse_cpu = time.perf_counter(), time.process_time()
        result = lib.record_many(events, stream=True)
        load.seconds += time.perf_counter() - start
        load.client_cpu += time.process_time() - cpu
        load.parse_seconds += parsed - start
        load.parse_cpu += parse_cpu - cpu
        load.events += len(events)
        load.applied += result.applied
        load.unchanged += result.unchanged
        load.rejected += len(result.rejected)
    load.server_cpu = server_cpu(client) - server_before
    return load


def record_events(
    client: redis.Redis, lib: ta.TrainingAnalytics, events: Sequence[dict[str, Any]]
) -> Load:
    """record_many(stream=True) of dicts already parsed (the per-kind loads)."""
    # The per-kind loads keep the whole history's dicts (about 300,000) in this process: a full
    # collection falling inside a load of a few thousand events walks all of them (a quarter
    # of a second, measured: 59 µs an event instead of 12 in one load of 6,399 completions).
    # That is this harness's heap, not the import's (which streams): collect before timing.
    gc.collect()
    server_before = server_cpu(client)
    start, cpu = time.perf_counter(), time.process_time()
    result = lib.record_many(events, stream=True)
    seconds, client_cpu = time.perf_counter() - start, time.process_time() - cpu
    return Load(
        len(events),
        seconds,
        client_cpu,
        server_cpu(client) - server_before,
        result.applied,
        result.unchanged,
        len(result.rejected),
    )


def cli_env(url: str) -> dict[str, str]:
    # The URL through the environment, not the command line: a password in it would show in
    # the process list.
    return {**os.environ, "REDIS_URL": url, "COLUMNS": "200", "NO_COLOR": "1"}


def import_command(*options: str) -> list[str]:
    return [sys.executable, "-m", "training_analytics", *options]


def cli_accepts_jobs(url: str) -> bool:
    """Whether the installed ``import`` has ``--jobs`` (another engineer is adding it)."""
    shown = subprocess.run(
        import_command("import", "--help"),
        env=cli_env(url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return "--jobs" in shown.stdout


def cli_import(
    client: redis.Redis, url: str, path: Path, events: int, *options: str, prefix: str = ""
) -> Load:
    """Path (b): ``training-analytics import FILE --json`` as a child process, timed whole."""
    args = ["import", str(path), "--json", *options]
    if prefix:
        args += ["--prefix", prefix]
    server_before, cpu = server_cpu(client), children_cpu()
    start = time.perf_counter()
    done = subprocess.run(
        import_command(*args),
        env=cli_env(url),
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    seconds = time.perf_counter() - start
    # 3: some lines rejected; the caller says whether that may be (check_clean).
    if done.returncode not in (0, 3):
        raise RuntimeError(
            f"training-analytics import exited {done.returncode}: {done.stderr[-2000:]}"
        )
    summary = json.loads(done.stdout)
    return Load(
        events,
        seconds,
        children_cpu() - cpu,
        server_cpu(client) - server_before,
        int(summary["applied"]),
        int(summary["unchanged"]),
        int(summary["rejected"]),
        reported_seconds=float(summary["seconds"]),
    )


def key_family(key: str) -> str:
    """``training:progress:learner-0000001:course-03`` -> ``training:progress:{user}:{course}``."""
    for pattern, name in (
        (r"learner-\d+", "{user}"),
        (r"course-\d+", "{course}"),
        (r"cert-\d+", "{cert}"),
        (r"\d{4}-\d{2}-\d{2}", "{day}"),
        (r"(?<=:)m\d+\b", "{module}"),
    ):
        key = re.sub(pattern, name, key)
    return key


def key_families(client: redis.Redis, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Every key's MEMORY USAGE (all of its elements) and encoding, summed by family."""
    bytes_by: Counter[str] = Counter()
    keys_by: Counter[str] = Counter()
    encodings: dict[str, Counter[str]] = {}
    batch: list[str] = []

    def flush_batch() -> None:
        pipe = client.pipeline(transaction=False)
        for key in batch:
            queue(pipe, "MEMORY", "USAGE", key, "SAMPLES", 0)
            queue(pipe, "OBJECT", "ENCODING", key)
        replies = pipe.execute()
        for i, key in enumerate(batch):
            family = key_family(key[len(prefix) :])
            bytes_by[family] += int(replies[2 * i] or 0)
            keys_by[family] += 1
            encodings.setdefault(family, Counter())[str(replies[2 * i + 1])] += 1
        batch.clear()

    for key in client.scan_iter(match=f"{ta.keys.glob_escape(prefix)}*", count=1000):
        batch.append(str(key))
        if len(batch) == 1000:
            flush_batch()
    if batch:
        flush_batch()
    return {
        family: {
            "keys": keys_by[family],
            "bytes": bytes_by[family],
            "encodings": dict(encodings[family]),
        }
        for family in sorted(bytes_by, key=lambda f: -bytes_by[f])
    }


def store_digest(url: str, prefix: str = "", *, skip: str = "") -> str:
    """A digest of every key's type and content but ``skip``'s, canonically ordered: equal
    stores, equal digests.

    Content, not DUMP: a hash table's DUMP follows its iteration order, which a rewrite of the
    same values (a replayed progress save) can change.
    """
    raw = redis.Redis.from_url(url)  # bytes in, bytes out: values are hashed as stored
    keys = sorted(
        bytes(k)
        for k in raw.scan_iter(match=f"{ta.keys.glob_escape(prefix)}*")
        if bytes(k) != skip.encode()
    )
    read = {
        b"string": lambda pipe, key: queue(pipe, "GET", key),
        b"hash": lambda pipe, key: queue(pipe, "HGETALL", key),
        b"set": lambda pipe, key: queue(pipe, "SMEMBERS", key),
        b"zset": lambda pipe, key: queue(pipe, "ZRANGE", key, 0, -1, "WITHSCORES"),
        b"list": lambda pipe, key: queue(pipe, "LRANGE", key, 0, -1),
    }
    digest = hashlib.sha256()
    for start in range(0, len(keys), 1000):
        part = keys[start : start + 1000]
        pipe = raw.pipeline(transaction=False)
        for key in part:
            queue(pipe, "TYPE", key)
        kinds = [bytes(k) if isinstance(k, bytes) else str(k).encode() for k in pipe.execute()]
        pipe = raw.pipeline(transaction=False)
        for key, kind in zip(part, kinds, strict=True):
            read[kind](pipe, key)
        for key, kind, value in zip(part, kinds, pipe.execute(), strict=True):
            content = sorted(value.items()) if isinstance(value, dict) else value
            if isinstance(content, set):
                content = sorted(content)
            digest.update(repr((key, kind, content)).encode())
    raw.close()
    return digest.hexdigest()


# --- DuckDB --------------------------------------------------------------------------------


def duckdb_load(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> float:
    """Seconds to create ``table`` from the file with read_json (given columns)."""
    start = time.perf_counter()
    con.execute(
        f"CREATE TABLE {table} AS SELECT * FROM read_json($path, "
        f"format = 'newline_delimited', columns = {_COLUMNS_LITERAL})",
        {"path": str(path)},
    ).fetchall()
    return time.perf_counter() - start


def arrow_load(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> tuple[float, float]:
    """Seconds of pyarrow's JSON reader, then of DuckDB copying its Arrow table."""
    start = time.perf_counter()
    arrow_table = pa_json.read_json(
        str(path), parse_options=pa_json.ParseOptions(explicit_schema=_arrow_schema())
    )
    read = time.perf_counter() - start
    con.register("arrow_events", arrow_table)
    start = time.perf_counter()
    con.execute(f"CREATE TABLE {table} AS SELECT * FROM arrow_events").fetchall()
    copied = time.perf_counter() - start
    con.unregister("arrow_events")
    return read, copied


def duckdb_ram(con: duckdb.DuckDBPyConnection) -> int:
    """Bytes DuckDB holds for in-memory tables (duckdb_memory())."""
    ((used,),) = con.execute(
        "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() "
        "WHERE tag = 'IN_MEMORY_TABLE'"
    ).fetchall()
    return _int(used)


# --- the phase --------------------------------------------------------------------------------

#: Encoding thresholds tried for item 4, each set before loading into an empty database.
#: (Redis 7.0 has no set-max-listpack-*: a setting the server does not know is reported so.)
SETTINGS: dict[str, dict[str, str]] = {
    "server defaults": {},
    "hash-max-listpack-value 1024": {"hash-max-listpack-value": "1024"},
    "hash-max-listpack-value 2048": {"hash-max-listpack-value": "2048"},
    "hash-max-listpack-entries 0 (no listpack hashes)": {"hash-max-listpack-entries": "0"},
    "set-max-listpack-entries 1024": {"set-max-listpack-entries": "1024"},
    "set-max-intset-entries 4096": {"set-max-intset-entries": "4096"},
    "zset-max-listpack-entries 1024, value 128": {
        "zset-max-listpack-entries": "1024",
        "zset-max-listpack-value": "128",
    },
    "hash value 2048 + set 1024 + zset 1024": {
        "hash-max-listpack-value": "2048",
        "set-max-listpack-entries": "1024",
        "zset-max-listpack-entries": "1024",
        "zset-max-listpack-value": "128",
    },
}


class MixedIngest:
    """The phase's state: the server, the files, the figures."""

    def __init__(self, bench: Bench, workdir: Path) -> None:
        self.bench = bench
        self.client = bench.client
        self.url = _url_of(bench.client)
        self.workdir = workdir
        self.figures: dict[str, Any] = {}

    def log(self, message: str) -> None:
        self.bench.log(f"ingest-mixed: {message}")

    def lib(self, prefix: str = "") -> ta.TrainingAnalytics:
        return ta.TrainingAnalytics(self.client, prefix=prefix, clock=lambda: READ_NOW)

    def fresh_store(self, history: MixedHistory, *prefixes: str) -> None:
        self.bench.flush()
        for prefix in prefixes or ("",):
            create_courses(self.lib(prefix), history)

    def write(self, history: MixedHistory, name: str) -> tuple[Path, dict[str, int]]:
        path = self.workdir / name
        start = time.perf_counter()
        counts = write_jsonl(history, path)
        self.log(
            f"{sum(counts.values()):,} events of {history.pairs:,} learner-courses written "
            f"in {time.perf_counter() - start:.1f} s ({path.stat().st_size / 1e6:,.0f} MB)"
        )
        return path, counts

    # (a), (b), (c) on the main file, answers checked first --------------------------------------

    def paths(self, history: MixedHistory, path: Path, counts: dict[str, int]) -> None:
        plan = self.bench.plan
        events = sum(counts.values())
        course_ids = history.course_ids()
        self.figures["history"] = {
            "learner_courses": history.pairs,
            "courses": history.courses,
            "modules": history.modules,
            "events": events,
            "events_by_kind": counts,
            "events_per_learner_course": round(events / history.pairs, 2),
            "file_bytes": path.stat().st_size,
            "read_clock": READ_NOW.isoformat(),
        }
        # (c) DuckDB first: its answers are the reference the library's are checked against.
        con = duckdb.connect()
        duck_seconds = [duckdb_load(con, "events", path)]
        reference = duckdb_answers(con, "events", course_ids, history.modules)
        table_ram = duckdb_ram(con)
        arrow_read, arrow_copy = arrow_load(con, "arrow_events_table", path)
        compare(
            "DuckDB over the Arrow table",
            duckdb_answers(con, "arrow_events_table", course_ids, history.modules),
            reference,
            "DuckDB over read_json",
        )
        arrow_reads, arrow_copies = [arrow_read], [arrow_copy]
        for rep in range(1, plan.mixed_repeat):
            duck_seconds.append(duckdb_load(con, f"events{rep}", path))
            read, copied = arrow_load(con, f"arrow{rep}", path)
            arrow_reads.append(read)
            arrow_copies.append(copied)
            con.execute(f"DROP TABLE events{rep}; DROP TABLE arrow{rep}").fetchall()
        con.close()
        on_disk = self.workdir / "events.duckdb"
        disk_con = duckdb.connect(str(on_disk))
        disk_seconds = duckdb_load(disk_con, "events", path)
        disk_con.execute("CHECKPOINT").fetchall()
        disk_con.close()
        duck = _median(duck_seconds)
        arrow_total = _median([r + c for r, c in zip(arrow_reads, arrow_copies, strict=True)])
        self.figures["duckdb"] = {
            "version": duckdb.__version__,
            "threads": os.cpu_count(),
            "read_json_seconds": [round(s, 3) for s in duck_seconds],
            "read_json_events_per_second": round(events / duck),
            "arrow_read_seconds": [round(s, 3) for s in arrow_reads],
            "arrow_copy_seconds": [round(s, 3) for s in arrow_copies],
            "arrow_events_per_second": round(events / arrow_total),
            "file_database_seconds": round(disk_seconds, 3),
            "file_database_events_per_second": round(events / disk_seconds),
            "table_bytes_in_ram": table_ram,
            "table_bytes_on_disk": on_disk.stat().st_size,
        }
        on_disk.unlink()
        self.log(
            f"DuckDB read_json {events / duck:,.0f} events/s, Arrow {events / arrow_total:,.0f}"
        )

        # (a) record_many(stream=True) from parsed dicts, one process.
        loads_a: list[Load] = []
        answers_a: Answers | None = None
        for _ in range(plan.mixed_repeat):
            self.fresh_store(history)
            before = used_memory(self.client)
            load = record_parsed(self.client, self.lib(), path)
            check_clean("record_many of the mixed file", load)
            loads_a.append(load)
            if answers_a is None:
                answers_a = library_answers(self.lib(), course_ids)
                compare("after record_many", answers_a, reference, "DuckDB's SQL")
                self.memory(history, used_memory(self.client) - before)
        assert answers_a is not None
        self.figures["record_many"] = _median_load(loads_a)
        self.log(
            f"record_many {self.figures['record_many']['ingest_events_per_second']:,} events/s "
            f"(with parsing {self.figures['record_many']['events_per_second']:,})"
        )

        # (b) the import command: default, then --jobs N if it has them, then the replay.
        jobs = cli_accepts_jobs(self.url)
        self.figures["import_has_jobs"] = jobs
        variants: list[tuple[str, tuple[str, ...]]] = [("import", ())]
        if jobs:
            # With --jobs the command's default may be several processes (by file size): one
            # process is then timed on its own too.
            variants += [(f"import --jobs {n}", ("--jobs", str(n))) for n in (1, 2, 3)]
        for name, options in variants:
            loads: list[Load] = []
            replays: list[Load] = []
            for rep in range(plan.mixed_repeat):
                self.fresh_store(history)
                load = cli_import(self.client, self.url, path, events, *options)
                check_clean(f"{name} of the mixed file", load)
                loads.append(load)
                if rep == 0:
                    compare(
                        f"after {name}",
                        library_answers(self.lib(), course_ids),
                        answers_a,
                        "record_many's store",
                    )
                if name == "import":
                    replays.append(self.replay(path, events, answers_a, course_ids))
            self.figures[name] = _median_load(loads)
            if replays:
                self.figures["import replay"] = _median_load(replays)
            self.log(f"{name} {self.figures[name]['events_per_second']:,} events/s")
        self.bench.flush()
        best = max(self.figures[name]["events_per_second"] for name, _ in variants)
        self.figures["ratios_to_duckdb_read_json"] = {
            "record_many (ingest only)": _ratio(
                self.figures["record_many"]["ingest_events_per_second"], events / duck
            ),
            "record_many (with parsing)": _ratio(
                self.figures["record_many"]["events_per_second"], events / duck
            ),
            **{
                name: _ratio(self.figures[name]["events_per_second"], events / duck)
                for name, _ in variants
            },
            "import replay": _ratio(
                self.figures["import replay"]["events_per_second"], events / duck
            ),
            "best import": _ratio(best, events / duck),
        }

    def startup_cost(self, history: MixedHistory) -> Load:
        """The import command's fixed cost: start-up and connection, on an empty file."""
        empty = self.workdir / "empty.jsonl"
        empty.write_bytes(b"")
        self.fresh_store(history)
        baseline = cli_import(self.client, self.url, empty, 0)
        self.figures["import_empty_file"] = {
            "seconds": round(baseline.seconds, 3),
            "client_cpu_seconds": round(baseline.client_cpu, 3),
        }
        return baseline

    def replay(self, path: Path, events: int, answers: Answers, course_ids: Sequence[str]) -> Load:
        """Import the same file again: the store's content must not change, and no line may be
        refused (a re-issue of a certificate that moved on since is a replay).

        The store version is left out (and reported): a learner's earlier progress saves change
        the hash back when replayed (the store holds the last one), so they count as applied
        and raise the version, which tells pollers to re-read; the data ends the same.
        """
        version_key = self.lib().keys.store_version()
        version = int(self.client.get(version_key) or 0)
        before = store_digest(self.url, skip=version_key)
        load = cli_import(self.client, self.url, path, events)
        check_clean("the replay of the mixed file", load)
        if store_digest(self.url, skip=version_key) != before:
            raise MismatchError("replaying the mixed file changed the store")
        self.figures["replay_store_version_raised_by"] = (
            int(self.client.get(version_key) or 0) - version
        )
        compare(
            "after the replay",
            library_answers(self.lib(), course_ids),
            answers,
            "the store before the replay",
        )
        return load

    def memory(self, history: MixedHistory, delta: int) -> None:
        families = key_families(self.client)
        pairs = history.pairs
        self.figures["memory"] = {
            "used_memory_delta": delta,
            "bytes_per_learner_course": round(delta / pairs, 1),
            "memory_usage_sum": sum(f["bytes"] for f in families.values()),
            # What this library adds to the older system's layout: its derived keys.
            "derived_bytes_per_learner_course": round(
                sum(f["bytes"] for name, f in families.items() if name.startswith("training:agg:"))
                / pairs,
                1,
            ),
            "families": {
                name: {**f, "bytes_per_learner_course": round(f["bytes"] / pairs, 1)}
                for name, f in families.items()
            },
        }

    # per event kind, in context -----------------------------------------------------------------

    def per_kind(self, history: MixedHistory, path: Path) -> None:
        events = [json.loads(line) for line in path.read_bytes().splitlines()]
        by_kind: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
        for event in events:
            by_kind[event["kind"]].append(event)
        results: dict[str, Any] = {}
        course_ids = history.course_ids()
        baseline = self.startup_cost(history)
        duck = duckdb.connect()
        for kind in KINDS:
            kind_file = self.workdir / f"{kind}.jsonl"
            kind_file.write_text(
                "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in by_kind[kind]),
                encoding="utf-8",
            )
            others = [e for e in events if e["kind"] != kind]
            # Two stores side by side (prefixes), the other kinds loaded in both first.
            self.fresh_store(history, "a:", "b:")
            self.lib("a:").record_many(others, stream=True)
            self.lib("b:").record_many(others, stream=True)
            ours = record_events(self.client, self.lib("a:"), by_kind[kind])
            theirs = cli_import(self.client, self.url, kind_file, len(by_kind[kind]), prefix="b:")
            compare(
                f"{kind} loaded last",
                library_answers(self.lib("b:"), course_ids),
                library_answers(self.lib("a:"), course_ids),
                "the import command's store",
            )
            duck_seconds = duckdb_load(duck, f"kind_{kind}", kind_file)
            count = len(by_kind[kind])
            results[kind] = {
                "record_many": ours.figures(),
                "import": {
                    **theirs.figures(),
                    # Less the command's start-up (an empty file's import), which the kind's
                    # few thousand events would otherwise drown in.
                    "client_cpu_net_us_per_event": round(
                        (theirs.client_cpu - baseline.client_cpu) / count * 1e6, 2
                    ),
                },
                "duckdb_read_json_events_per_second": round(count / duck_seconds),
            }
            self.log(
                f"{kind}: record_many {results[kind]['record_many']['events_per_second']:,}/s, "
                f"import {results[kind]['import']['events_per_second']:,}/s"
            )
            kind_file.unlink()
        duck.close()
        self.figures["per_kind"] = {"learner_courses": history.pairs, "kinds": results}
        self.bench.flush()

    # item 4: encodings ---------------------------------------------------------------------------

    def settings(self, history: MixedHistory, path: Path) -> None:
        events = [json.loads(line) for line in path.read_bytes().splitlines()]
        names = sorted({n for values in SETTINGS.values() for n in values})
        original: dict[str, str] = {}
        for name in names:
            got: dict[Any, Any] = self.client.config_get(name)
            if name in got:
                original[name] = str(got[name])
        results: dict[str, Any] = {}
        try:
            for title, values in SETTINGS.items():
                unknown = [n for n in values if n not in original]
                if unknown:
                    results[title] = {"skipped": f"the server has no {', '.join(unknown)}"}
                    continue
                for name, value in original.items():
                    self.client.config_set(name, value)
                for name, value in values.items():
                    self.client.config_set(name, value)
                self.fresh_store(history)
                before = used_memory(self.client)
                load = record_events(self.client, self.lib(), events)
                check_clean(f"record_many with {title}", load)
                delta = used_memory(self.client) - before
                families = key_families(self.client)
                results[title] = {
                    "bytes_per_learner_course": round(delta / history.pairs, 1),
                    "events_per_second": round(load.events / load.seconds),
                    "server_cpu_us_per_event": round(load.server_cpu / load.events * 1e6, 2),
                    "families_bytes_per_learner_course": {
                        name: round(f["bytes"] / history.pairs, 1)
                        for name, f in list(families.items())[:8]
                    },
                    "encodings": {name: f["encodings"] for name, f in list(families.items())[:8]},
                }
                self.log(
                    f"{title}: {results[title]['bytes_per_learner_course']:,} B/learner-course, "
                    f"{results[title]['events_per_second']:,} events/s"
                )
        finally:
            for name, value in original.items():
                self.client.config_set(name, value)
        self.figures["settings"] = {
            "learner_courses": history.pairs,
            "original": original,
            "results": results,
        }
        self.bench.flush()


def check_clean(question: str, load: Load) -> None:
    """Every event of a load must apply or be a replay: a refusal means the stores differ (on a
    first load) or a replay was refused."""
    if load.rejected or load.applied + load.unchanged != load.events:
        raise MismatchError(
            f"{question}: {load.applied} applied, {load.unchanged} unchanged, "
            f"{load.rejected} rejected of {load.events} events"
        )


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _median_load(loads: Sequence[Load]) -> dict[str, Any]:
    chosen = sorted(loads, key=lambda load: load.seconds)[len(loads) // 2]
    out = chosen.figures()
    out["repetitions_seconds"] = [round(load.seconds, 3) for load in loads]
    return out


def _ratio(ours: float, theirs: float) -> float:
    return round(ours / theirs, 3)


def ingest_mixed_phase(bench: Bench) -> None:
    """Run the phase; figures in ``bench.run.meta["ingest_mixed"]``."""
    plan = bench.plan
    history = MixedHistory(pairs=plan.mixed_pairs)
    with tempfile.TemporaryDirectory(prefix="ta-mixed-") as tmp:
        phase = MixedIngest(bench, Path(tmp))
        path, counts = phase.write(history, "mixed.jsonl")
        phase.paths(history, path, counts)
        if plan.mixed_kind_pairs == plan.mixed_pairs:
            small, small_path = history, path
        else:
            path.unlink()
            small = MixedHistory(pairs=plan.mixed_kind_pairs)
            small_path, _ = phase.write(small, "mixed-small.jsonl")
        phase.per_kind(small, small_path)
        phase.settings(small, small_path)
    figures = phase.figures
    figures["repetitions"] = plan.mixed_repeat
    figures["targets"] = targets(figures)
    bench.run.meta["ingest_mixed"] = figures
    for shown in tables(figures):
        bench.console.print(shown)


def targets(figures: dict[str, Any]) -> dict[str, bool]:
    """Issue 13's targets, judged on this run (they are meant for a full run)."""
    imports = [
        figures[name]["events_per_second"]
        for name in ("import", "import --jobs 1", "import --jobs 2", "import --jobs 3")
        if name in figures
    ]
    kinds = figures["per_kind"]["kinds"]
    return {
        "import >= 100,000 events/s": max(imports) >= 100_000,
        "record_many(stream=True) >= 60,000 events/s": (
            figures["record_many"]["ingest_events_per_second"] >= 60_000
        ),
        "no kind below 30,000 events/s (record_many)": min(
            k["record_many"]["events_per_second"] for k in kinds.values()
        )
        >= 30_000,
        "replay at least as fast as the import": (
            figures["import replay"]["events_per_second"] >= figures["import"]["events_per_second"]
        ),
    }


def tables(figures: dict[str, Any]) -> list[Table]:
    """The paths, the kinds and the memory, as Rich tables."""
    history, duck = figures["history"], figures["duckdb"]
    paths = Table(
        title=(
            f"Mixed history import: {history['events']:,} events of "
            f"{history['learner_courses']:,} learner-courses (medians of "
            f"{figures['repetitions']})"
        ),
        title_justify="left",
    )
    for name in ("path", "events/s", "vs DuckDB", "client µs/ev", "server µs/ev"):
        paths.add_column(name, justify="left" if name == "path" else "right")
    ratios = figures["ratios_to_duckdb_read_json"]
    rows = [("record_many (ingest only)", figures["record_many"], "ingest_events_per_second")]
    rows.append(("record_many (with parsing)", figures["record_many"], "events_per_second"))
    for name in (
        "import",
        "import --jobs 1",
        "import --jobs 2",
        "import --jobs 3",
        "import replay",
    ):
        if name in figures:
            rows.append((name, figures[name], "events_per_second"))
    for name, load, field in rows:
        paths.add_row(
            name,
            f"{load[field]:,}",
            f"{ratios[name]:.3f}x",
            f"{load['client_cpu_us_per_event']:.1f}",
            f"{load['server_cpu_us_per_event']:.1f}",
        )
    paths.add_row("DuckDB read_json", f"{duck['read_json_events_per_second']:,}", "1x", "", "")
    paths.add_row("DuckDB via Arrow", f"{duck['arrow_events_per_second']:,}", "", "", "")
    for target, met in figures["targets"].items():
        paths.add_row(f"target: {target}", "met" if met else "[red]missed[/]", "", "", "")
    per_kind = figures["per_kind"]
    kinds = Table(
        title=(
            f"Per kind, loaded after the other kinds ({per_kind['learner_courses']:,} "
            "learner-courses); import timed by its own clock (no start-up)"
        ),
        title_justify="left",
    )
    for name in (
        "kind",
        "events",
        "record_many/s",
        "import/s",
        "DuckDB/s",
        "rm client µs",
        "rm server µs",
        "import server µs",
    ):
        kinds.add_column(name, justify="left" if name == "kind" else "right")
    for kind, result in per_kind["kinds"].items():
        ours, theirs = result["record_many"], result["import"]
        kinds.add_row(
            kind,
            f"{ours['events']:,}",
            f"{ours['events_per_second']:,}",
            f"{theirs['reported_events_per_second'] or 0:,}",
            f"{result['duckdb_read_json_events_per_second']:,}",
            f"{ours['client_cpu_us_per_event']:.1f}",
            f"{ours['server_cpu_us_per_event']:.1f}",
            f"{theirs['server_cpu_us_per_event']:.1f}",
        )
    pairs = history["learner_courses"]
    memory = Table(title="Bytes per learner-course", title_justify="left")
    memory.add_column("what")
    memory.add_column("bytes", justify="right")
    memory.add_row(
        "store (INFO used_memory delta)", f"{figures['memory']['bytes_per_learner_course']:,.0f}"
    )
    memory.add_row("DuckDB table in RAM", f"{duck['table_bytes_in_ram'] / pairs:,.0f}")
    memory.add_row("DuckDB database file", f"{duck['table_bytes_on_disk'] / pairs:,.0f}")
    memory.add_row("JSONL file", f"{history['file_bytes'] / pairs:,.0f}")
    for title, result in figures["settings"]["results"].items():
        shown = (
            result["skipped"]
            if "skipped" in result
            else f"{result['bytes_per_learner_course']:,.0f} ({result['events_per_second']:,}/s)"
        )
        memory.add_row(f"store, {title}", shown)
    return [paths, kinds, memory]
