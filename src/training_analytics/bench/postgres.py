"""PostgreSQL, what many teams would use instead: the same events in tables, questions in SQL.

The server is the one at ``PG_URL`` when set (tables go in a schema of their own, dropped after),
else a throwaway cluster started here with ``initdb`` / ``pg_ctl`` on a free loopback port in a
temporary directory, removed after. The throwaway cluster runs without durability (fsync and
synchronous_commit off), like the embedded Valkey (no RDB, no AOF), so neither side pays for
disk writes the other skips.

Tables have the indexes a team would add for these questions: primary keys on (course, user)
and (course, module, user) so per-course counts are index-only scans, and indexes on the event
times and certificate expiry for the range questions.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

from .baseline_seed import (
    CourseFigures,
    CredentialFigures,
    OverviewFigures,
    average_completion,
    dropoff,
    math_round,
    percentage,
    round_decimals,
)
from .data import DAY_MS, MODULES, Certificate, Learner, iso

SCHEMA = "ta_bench"
_MS_PER_HOUR = 3_600_000

TABLES = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
SET search_path TO {SCHEMA};
CREATE TABLE courses (id text PRIMARY KEY, is_published boolean NOT NULL, sort_order int NOT NULL);
CREATE TABLE enrollments (course_id text NOT NULL, user_id text NOT NULL,
                          enrolled_at timestamptz NOT NULL);
CREATE TABLE completions (course_id text NOT NULL, user_id text NOT NULL,
                          completed_at timestamptz NOT NULL);
CREATE TABLE progress (course_id text NOT NULL, user_id text NOT NULL, status text NOT NULL,
                       overall_score numeric NOT NULL, started_at timestamptz,
                       completed_at timestamptz, last_accessed_at timestamptz,
                       total_minutes numeric NOT NULL, module_progress jsonb NOT NULL);
CREATE TABLE module_starts (course_id text NOT NULL, module_id text NOT NULL,
                            user_id text NOT NULL);
CREATE TABLE module_completions (course_id text NOT NULL, module_id text NOT NULL,
                                 user_id text NOT NULL);
CREATE TABLE certifications (id text PRIMARY KEY, user_id text NOT NULL, course_id text NOT NULL,
                             status text NOT NULL, issued_at timestamptz NOT NULL,
                             claimed_at timestamptz, expires_at timestamptz, score numeric);
"""

# Built after a bulk load (faster than maintaining them row by row), before any query.
INDEXES = f"""
SET search_path TO {SCHEMA};
ALTER TABLE enrollments ADD PRIMARY KEY (course_id, user_id);
ALTER TABLE completions ADD PRIMARY KEY (course_id, user_id);
ALTER TABLE progress ADD PRIMARY KEY (course_id, user_id);
ALTER TABLE module_starts ADD PRIMARY KEY (course_id, module_id, user_id);
ALTER TABLE module_completions ADD PRIMARY KEY (course_id, module_id, user_id);
CREATE INDEX enrollments_at ON enrollments (enrolled_at);
CREATE INDEX completions_at ON completions (completed_at);
CREATE INDEX certifications_status ON certifications (status);
CREATE INDEX certifications_expiry ON certifications (expires_at);
"""

COURSE_SQL = f"""
WITH e AS (SELECT count(*) AS n FROM {SCHEMA}.enrollments WHERE course_id = %(c)s),
     c AS (SELECT count(*) AS n FROM {SCHEMA}.completions WHERE course_id = %(c)s),
     p AS (SELECT count(*) FILTER (WHERE p.overall_score > 0) AS scored,
                  coalesce(sum(p.overall_score) FILTER (WHERE p.overall_score > 0), 0) AS score_sum,
                  count(*) FILTER (WHERE p.completed_at > p.started_at) AS timed,
                  coalesce(sum(extract(epoch FROM p.completed_at - p.started_at) * 1000)
                           FILTER (WHERE p.completed_at > p.started_at), 0)::bigint AS ms
           FROM {SCHEMA}.progress p
           JOIN {SCHEMA}.enrollments en USING (course_id, user_id)
           WHERE p.course_id = %(c)s)
SELECT e.n, c.n, p.scored, p.score_sum, p.timed, p.ms FROM e, c, p
"""

DROPOFF_SQL = f"""
SELECT 's', module_id, count(*) FROM {SCHEMA}.module_starts WHERE course_id = %(c)s
GROUP BY module_id
UNION ALL
SELECT 'c', module_id, count(*) FROM {SCHEMA}.module_completions WHERE course_id = %(c)s
GROUP BY module_id
"""

CREDENTIAL_SQL = f"""
SELECT count(*),
       count(*) FILTER (WHERE status = 'claimed' OR claimed_at IS NOT NULL),
       count(*) FILTER (WHERE claimed_at > issued_at),
       coalesce(sum(extract(epoch FROM claimed_at - issued_at) * 1000)
                FILTER (WHERE claimed_at > issued_at), 0)::bigint,
       count(*) FILTER (WHERE status = 'issued' AND (expires_at IS NULL OR expires_at > %(now)s)),
       count(*) FILTER (WHERE status IN ('issued', 'claimed')
                        AND expires_at > %(now)s AND expires_at <= %(horizon)s)
FROM {SCHEMA}.certifications
"""

OVERVIEW_SQL = f"""
SELECT c.id, c.is_published, coalesce(e.n, 0), coalesce(d.n, 0)
FROM {SCHEMA}.courses c
LEFT JOIN (SELECT course_id, count(*) AS n FROM {SCHEMA}.enrollments GROUP BY course_id) e
       ON e.course_id = c.id
LEFT JOIN (SELECT course_id, count(*) AS n FROM {SCHEMA}.completions GROUP BY course_id) d
       ON d.course_id = c.id
ORDER BY c.sort_order, c.id
"""

SERIES_SQL = f"""
SELECT (enrolled_at AT TIME ZONE 'UTC')::date AS day, count(*)
FROM {SCHEMA}.enrollments
WHERE enrolled_at >= %(low)s AND enrolled_at < %(high)s
GROUP BY day
"""


class PostgresUnavailableError(Exception):
    """No PG_URL and no usable initdb/pg_ctl: the PostgreSQL figures are skipped."""


@dataclass
class Postgres:
    conn: psycopg.Connection[tuple[object, ...]]
    version: str
    where: str  # "PG_URL" or "throwaway cluster"

    # --- schema and loading -------------------------------------------------------------------

    def reset(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            cur.execute(TABLES, prepare=False)

    def add_indexes(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute(INDEXES, prepare=False)
        self.analyze()

    def analyze(self) -> None:
        # VACUUM sets the visibility map, without which count(*) cannot be an index-only scan.
        self.conn.execute(f"VACUUM ANALYZE {SCHEMA}.enrollments")
        for table in (
            "completions",
            "progress",
            "module_starts",
            "module_completions",
            "certifications",
            "courses",
        ):
            self.conn.execute(f"VACUUM ANALYZE {SCHEMA}.{table}")

    def load_learners(self, rows: Sequence[Learner], fields: Sequence[dict[str, str]]) -> None:
        """COPY the learners' events and progress (``fields``: their progress hashes)."""
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY {SCHEMA}.enrollments FROM STDIN") as copy:
                for r in rows:
                    copy.write_row((r.course_id, r.user_id, iso(r.enrolled_ms)))
            with cur.copy(f"COPY {SCHEMA}.completions FROM STDIN") as copy:
                for r in rows:
                    if r.completed_ms is not None:
                        copy.write_row((r.course_id, r.user_id, iso(r.completed_ms)))
            with cur.copy(f"COPY {SCHEMA}.module_starts FROM STDIN") as copy:
                for r in rows:
                    for module_id in MODULES[: r.modules_started]:
                        copy.write_row((r.course_id, module_id, r.user_id))
            with cur.copy(f"COPY {SCHEMA}.module_completions FROM STDIN") as copy:
                for r in rows:
                    for module_id in MODULES[: r.modules_completed]:
                        copy.write_row((r.course_id, module_id, r.user_id))
            with cur.copy(f"COPY {SCHEMA}.progress FROM STDIN") as copy:
                for r, f in zip(rows, fields, strict=True):
                    copy.write_row(
                        (
                            r.course_id,
                            r.user_id,
                            f["status"],
                            f["overallScore"],
                            f["startedAt"] or None,
                            f["completedAt"] or None,
                            f["lastAccessedAt"],
                            f["totalTimeSpentMinutes"],
                            f["moduleProgress"],
                        )
                    )
        self.conn.commit()

    def load_certificates(self, rows: Sequence[Certificate]) -> None:
        with (
            self.conn.cursor() as cur,
            cur.copy(f"COPY {SCHEMA}.certifications FROM STDIN") as copy,
        ):
            for c in rows:
                copy.write_row(
                    (
                        c.cert_id,
                        c.user_id,
                        c.course_id,
                        c.status,
                        iso(c.issued_ms),
                        iso(c.claimed_ms) if c.claimed_ms is not None else None,
                        iso(c.expires_ms),
                        c.score,
                    )
                )
        self.conn.commit()

    def load_courses(self, courses: Sequence[tuple[str, bool, int]]) -> None:
        with self.conn.cursor() as cur, cur.copy(f"COPY {SCHEMA}.courses FROM STDIN") as copy:
            for row in courses:
                copy.write_row(row)
        self.conn.commit()

    def copy_enrollments(self, rows: Sequence[tuple[str, str, int]]) -> None:
        """Bulk ingest of enrolment events (course, user, ms) into the indexed table."""
        with (
            self.conn.cursor() as cur,
            cur.copy(
                f"COPY {SCHEMA}.enrollments (course_id, user_id, enrolled_at) FROM STDIN"
            ) as copy,
        ):
            for course_id, user_id, ms in rows:
                copy.write_row((course_id, user_id, iso(ms)))
        self.conn.commit()

    def insert_enrollment(self, course_id: str, user_id: str, ms: int) -> None:
        """One event, one autocommitted INSERT (the single-event write path)."""
        self.conn.execute(
            f"INSERT INTO {SCHEMA}.enrollments VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (course_id, user_id, iso(ms)),
        )
        self.conn.commit()

    # --- the questions ------------------------------------------------------------------------

    def course_detailed_analytics(self, course_id: str) -> CourseFigures:
        row = self.conn.execute(COURSE_SQL, {"c": course_id}).fetchone()
        assert row is not None  # an aggregate query always returns one row
        enrolled, completed, scored, score_sum, timed, ms = (int(str(v)) for v in row)
        counts: dict[tuple[str, str], int] = {}
        for kind, module_id, n in self.conn.execute(DROPOFF_SQL, {"c": course_id}):
            counts[(str(kind), str(module_id))] = int(str(n))
        self.conn.commit()
        return CourseFigures(
            enrollments=enrolled,
            completions=completed,
            completion_rate=percentage(completed, enrolled),
            average_score=math_round(score_sum / scored) if scored else 0,
            average_time_to_complete=round_decimals(ms / timed / _MS_PER_HOUR, 1) if timed else 0.0,
            dropoff=tuple(
                (m, dropoff(counts.get(("s", m), 0), counts.get(("c", m), 0))) for m in MODULES
            ),
        )

    def credential_claim_analytics(self, now_ms: int) -> CredentialFigures:
        now = datetime.fromtimestamp(now_ms / 1000, UTC)
        horizon = datetime.fromtimestamp((now_ms + 30 * DAY_MS) / 1000, UTC)
        row = self.conn.execute(CREDENTIAL_SQL, {"now": now, "horizon": horizon}).fetchone()
        assert row is not None
        self.conn.commit()
        total, claimed, timed, ms, pending, expiring = (int(str(v)) for v in row)
        return CredentialFigures(
            total_issued=total,
            total_claimed=claimed,
            claim_rate=percentage(claimed, total),
            average_claim_time_hours=round_decimals(ms / timed / _MS_PER_HOUR, 1) if timed else 0.0,
            pending=pending,
            expiring_in_30_days=expiring,
        )

    def overview_metrics(self) -> OverviewFigures:
        rows = self.conn.execute(OVERVIEW_SQL).fetchall()
        cert_row = self.conn.execute(f"SELECT count(*) FROM {SCHEMA}.certifications").fetchone()
        self.conn.commit()
        assert cert_row is not None
        published = [r for r in rows if r[1]]
        rates = [
            percentage(int(str(r[3])), int(str(r[2]))) for r in published if int(str(r[2])) > 0
        ]
        return OverviewFigures(
            total_courses=len(rows),
            published_courses=len(published),
            draft_courses=len(rows) - len(published),
            total_enrollments=sum(int(str(r[2])) for r in rows),
            average_completion_rate=average_completion(rates),
            total_certifications=int(str(cert_row[0])),
        )

    def daily_enrollment_counts(self, start: date, end: date) -> list[tuple[str, int]]:
        low = datetime(start.year, start.month, start.day, tzinfo=UTC)
        high = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
        counts = {
            str(day): int(str(n))
            for day, n in self.conn.execute(SERIES_SQL, {"low": low, "high": high})
        }
        self.conn.commit()
        days = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
        return [(d, counts.get(d, 0)) for d in days]


# --- finding or starting a server --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _binaries() -> tuple[str, str]:
    """initdb and pg_ctl from PATH, else the newest Debian cluster binaries."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        found = Path(directory)
        if (found / "initdb").exists() and (found / "pg_ctl").exists():
            return str(found / "initdb"), str(found / "pg_ctl")
    raise PostgresUnavailableError("no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin")


def _runner() -> tuple[list[str], int | None, int | None]:
    """Command prefix, uid and gid to run the server as: PostgreSQL refuses to run as root."""
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", name, "--"], entry.pw_uid, entry.pw_gid
    raise PostgresUnavailableError("running as root and no unprivileged user to run PostgreSQL as")


@contextlib.contextmanager
def _throwaway_cluster() -> Iterator[str]:
    initdb, pg_ctl = _binaries()
    prefix, uid, gid = _runner()
    root = Path(tempfile.mkdtemp(prefix="ta-bench-pg-"))
    data = root / "data"
    port = _free_port()
    try:
        try:
            if uid is not None and gid is not None:
                os.chown(root, uid, gid)
            subprocess.run(
                [
                    *prefix,
                    initdb,
                    "-D",
                    str(data),
                    "-U",
                    "bench",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={port} "
                f"-c unix_socket_directories={root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c shared_buffers=1GB -c work_mem=64MB -c max_wal_size=4GB "
                "-c autovacuum=off -c jit=off"
            )
            subprocess.run(
                [
                    *prefix,
                    pg_ctl,
                    "-D",
                    str(data),
                    "-l",
                    str(root / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "start",
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or b"").decode(errors="replace")[-500:]
            raise PostgresUnavailableError(f"could not start a cluster: {detail}") from exc
        except (subprocess.TimeoutExpired, OSError) as exc:
            raise PostgresUnavailableError(f"could not start a throwaway cluster: {exc}") from exc
        try:
            yield f"postgresql://bench@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                [*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                check=False,
                capture_output=True,
                timeout=120,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def connect(url: str | None) -> Iterator[Postgres]:
    """PostgreSQL at ``url`` (PG_URL), else a throwaway cluster; else PostgresUnavailableError."""
    with contextlib.ExitStack() as stack:
        where = "PG_URL"
        if url is None:
            url = stack.enter_context(_throwaway_cluster())
            where = "throwaway cluster (fsync off)"
        try:
            conn = psycopg.connect(url, prepare_threshold=0, autocommit=True)
        except psycopg.Error as exc:
            raise PostgresUnavailableError(f"cannot connect to PostgreSQL: {exc}") from exc
        stack.callback(conn.close)
        row = conn.execute("SHOW server_version").fetchone()
        conn.commit()
        pg = Postgres(conn=conn, version=str(row[0]) if row else "?", where=where)
        try:
            yield pg
        finally:
            # Leave a shared server as found; a throwaway one is removed whole anyway.
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
                conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
                conn.commit()
