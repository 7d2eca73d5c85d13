"""Rebuild every derived key from the base keys.

Run once on a store the older system wrote (and any time to repair one). It reads each learner
and certificate once, so it takes time proportional to the data; while it runs the index marker
is absent, so writes and index-dependent reads through this library are refused with
NotIndexedError instead of interleaving with the rebuild. Reads of the seed's own keys
(counts, drop-off, overview, global series) keep working.

What it rebuilds, per DESIGN.md section 3:
- per course: score and time-to-complete sums over enrolled learners' progress hashes, and
  the figures of progress saved by learners not enrolled (counted when they enrol);
- per course: new enrolments and completions per day, from the event sorted sets (a learner's
  first entry per course only: the older system added an entry for every re-enrolment);
- certificates: status sets repaired from each record's own status (each id in exactly one),
  expiry indexes, claimed count and claim-time sums.
"""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import suppress
from time import monotonic
from typing import Any

from pydantic import Field

from . import zone
from ._codec import PROGRESS_FIGURE_FIELDS, figures_text, progress_figures
from ._context import Context
from ._protocol import Op, ScriptCall, batch, cmd, load_script, pipeline, single
from ._time import day_bucket, from_epoch_ms, parse_timestamp_ms
from .errors import ConcurrentUpdateError, InvalidIdError, TrainingAnalyticsError
from .keys import CERTIFICATION_STATUSES, EXPIRABLE_STATUSES, check_id, glob_escape
from .scanning import scan_page
from .types import SeedModel

CHUNK = 2000
LOCK = load_script("lock.lua")
#: How long a reindex holds its lock without renewing it (it renews every third of that while it
#: works): a process that dies mid-rebuild blocks the next one for at most this long.
LEASE_MS = 30_000
#: How long a reindex waiting for another one pauses between attempts to take the lock.
WAIT_SECONDS = 0.05

Progress = Callable[[str, int], None]
"""Called with (stage, items done) as the rebuild advances."""


class ReindexReport(SeedModel):
    """What a rebuild counted."""

    courses: int = 0
    learners: int = 0
    enrollment_events: int = 0
    completion_events: int = 0
    certifications: int = 0
    removed_dangling_certifications: int = 0
    unenrolled_progress: int = 0
    """Progress hashes of learners not enrolled in their course (kept aside until they enrol)."""
    skipped_course_ids: list[str] = Field(default_factory=list)
    """Course ids found in keys that this library cannot address (e.g. containing ':')."""


def _scan(pattern: str) -> Op[list[str]]:
    found: list[str] = []
    cursor = "0"
    while True:
        cursor, keys = yield from single("SCAN", cursor, "MATCH", pattern, "COUNT", 5000)
        found.extend(keys)
        if str(cursor) == "0":
            return found


def _members(key: str) -> Op[list[str]]:
    found: list[str] = []
    cursor = "0"
    while True:
        cursor, items = yield from single("SSCAN", key, cursor, "COUNT", CHUNK)
        found.extend(items)
        if str(cursor) == "0":
            return sorted(set(found))


def _rebuild_course_stats(ctx: Context, course_id: str, report: ReindexReport) -> Op[None]:
    k = ctx.keys
    learners = yield from _members(k.course_enrollments(course_id))
    totals = [0, 0, 0, 0]
    for start in range(0, len(learners), CHUNK):
        chunk = learners[start : start + CHUNK]
        replies = yield from pipeline(
            [
                cmd("HMGET", k.user_course_progress(u, course_id), *PROGRESS_FIGURE_FIELDS)
                for u in chunk
            ]
        )
        for score, started, completed in replies:
            milli, time_ms = progress_figures(score, started, completed)
            if milli is not None:
                totals[0] += milli
                totals[1] += 1
            if time_ms is not None:
                totals[2] += time_ms
                totals[3] += 1
    report.learners += len(learners)
    completions = yield from single("SCARD", k.course_completions(course_id))
    yield from single(
        "HSET",
        k.course_stats(course_id),
        "score_milli_sum",
        totals[0],
        "score_n",
        totals[1],
        "time_ms_sum",
        totals[2],
        "time_n",
        totals[3],
        # The sizes of the sets these figures were built from: reads compare them with the sets
        # to notice writes that bypassed this library (see _index.ensure_fresh).
        "set:enrollments",
        len(learners),
        "set:completions",
        int(completions),
    )


def _rebuild_unenrolled_progress(
    ctx: Context, report: ReindexReport, courses_seen: set[str] | None = None
) -> Op[None]:
    """Figures of progress saved by learners not enrolled in its course, one SCAN page at a
    time (a store may hold a progress hash per learner and course)."""
    k = ctx.keys
    head = k.user_course_progress("x", "y")[: -len("x:{y}" if k.cluster else "x:y")]
    nodes: list[str] | None = None
    cursor = "0"
    while nodes is None or nodes:
        # Hashes only: a stray key of another type under the prefix is not a learner's progress.
        # (Every primary of a cluster in turn; on one server the plain SCAN.)
        keys, nodes, cursor = yield from scan_page(
            ctx,
            nodes,
            cursor,
            "MATCH",
            k.user_course_progress_pattern(),
            "COUNT",
            5000,
            "TYPE",
            "hash",
        )
        by_course: dict[str, list[str]] = defaultdict(list)
        for key in keys:
            user, _, course = key[len(head) :].partition(":")
            if k.cluster:
                course = course[1:-1] if course[:1] == "{" and course[-1:] == "}" else ""
            try:
                by_course[check_id(course, "course id")].append(check_id(user, "user id"))
            except InvalidIdError:
                continue  # not a key this library can address (see skipped_course_ids)
        courses = sorted(by_course)
        enrolled = yield from pipeline(
            [cmd("SMISMEMBER", k.course_enrollments(c), *by_course[c]) for c in courses]
        )
        outside = [
            (course, user)
            for course, flags in zip(courses, enrolled, strict=True)
            for user, flag in zip(by_course[course], flags, strict=True)
            if not int(flag)
        ]
        hashes = yield from pipeline(
            [
                cmd(
                    "HMGET",
                    k.user_course_progress(u, c),
                    "overallScore",
                    "startedAt",
                    "completedAt",
                )
                for c, u in outside
            ]
        )
        entries: dict[str, list[str]] = defaultdict(list)
        for (course, user), fields in zip(outside, hashes, strict=True):
            text = figures_text(*progress_figures(*fields))
            if text is not None:
                entries[course] += [user, text]
                report.unenrolled_progress += 1
        yield from pipeline(
            [cmd("HSET", k.course_unenrolled_progress(c), *pairs) for c, pairs in entries.items()]
        )
        if courses_seen is not None:
            courses_seen.update(courses)


def _rebuild_day_counts(
    ctx: Context, series: str, report: ReindexReport, course_id: str | None = None
) -> Op[None]:
    """Per-course day counts from an event series: the store's, or (cluster) one course's."""
    k = ctx.keys
    if course_id is not None:
        source = (
            k.course_enrollment_timeseries(course_id)
            if series == "enrollment"
            else k.course_completion_timeseries(course_id)
        )
    else:
        source = k.enrollment_timeseries() if series == "enrollment" else k.completion_timeseries()
    target = k.course_enrollments_by_day if series == "enrollment" else k.course_completions_by_day
    seen: set[tuple[str, str]] = set()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    start = 0
    while True:
        entries = yield from single("ZRANGE", source, start, start + CHUNK * 5 - 1, "WITHSCORES")
        flat = _flatten(entries)
        if not flat:
            break
        for member, score in flat:
            _, user_id, member_course = [*member.split(":", 2), "", ""][:3]
            if not user_id or not member_course or (user_id, member_course) in seen:
                continue
            if course_id is not None and member_course != course_id:
                continue  # a member naming another course has no place in this course's slot
            seen.add((user_id, member_course))
            counts[member_course][day_bucket(from_epoch_ms(int(float(score))), ctx.tz)] += 1
        start += CHUNK * 5
    for counted, days in counts.items():
        pairs: list[str | int] = []
        for day, n in sorted(days.items()):
            pairs += [day, n]
        yield from single("HSET", target(counted), *pairs)
    if series == "enrollment":
        report.enrollment_events += len(seen)
    else:
        report.completion_events += len(seen)


def _flatten(entries: list[Any]) -> list[tuple[str, float]]:
    # RESP3 replies [member, score] pairs; RESP2 a flat member, score, member, ... list.
    if entries and isinstance(entries[0], list | tuple):
        return [(str(pair[0]), float(pair[1])) for pair in entries]
    return [(str(m), float(s)) for m, s in zip(entries[0::2], entries[1::2], strict=True)]


def _rebuild_certifications(
    ctx: Context, report: ReindexReport, token: str, bucket: str | None = None
) -> Op[bool]:
    """Status sets, expiry indexes and claim figures: the store's, or (cluster) one bucket's.
    Whether it holds certificates."""
    k = ctx.keys
    ids = yield from _members(k.all_training_certifications(bucket))
    if bucket is not None and not ids:
        # An empty bucket: no certificate to file; status sets left by others are dropped.
        yield from pipeline(
            [cmd("DEL", k.certifications_by_status(s, bucket)) for s in CERTIFICATION_STATUSES]
        )
        return False
    by_status: dict[str, list[str]] = {s: [] for s in CERTIFICATION_STATUSES}
    expiry: dict[str, list[str | int]] = {s: [] for s in EXPIRABLE_STATUSES}
    claimed = claim_ms = claim_n = 0
    dangling: list[str] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        replies = yield from pipeline(
            [
                cmd(
                    "HMGET",
                    k.training_certification(i),
                    "status",
                    "issuedAt",
                    "claimedAt",
                    "expiresAt",
                )
                for i in chunk
            ]
        )
        for cert_id, fields in zip(chunk, replies, strict=True):
            status, issued_at, claimed_at, expires_at = fields
            if status not in by_status:
                dangling.append(cert_id)
                continue
            by_status[status].append(cert_id)
            expires = parse_timestamp_ms(expires_at)
            if status in expiry and expires is not None:
                expiry[status] += [expires, cert_id]
            if status == "claimed" or claimed_at:
                claimed += 1
                issued, claim = parse_timestamp_ms(issued_at), parse_timestamp_ms(claimed_at)
                if issued is not None and claim is not None and claim > issued:
                    claim_ms += claim - issued
                    claim_n += 1
    report.certifications += len(ids) - len(dangling)
    report.removed_dangling_certifications += len(dangling)
    # Status sets are rebuilt aside and swapped in, so readers never see them half built.
    for status, members in by_status.items():
        final = k.certifications_by_status(status, bucket)
        temporary = k.reindex_scratch(token, status, bucket)
        yield from single("DEL", temporary)
        for start in range(0, len(members), CHUNK):
            yield from single("SADD", temporary, *members[start : start + CHUNK])
        if members:
            yield from single("RENAME", temporary, final)
        else:
            yield from single("DEL", final)
    for status, pairs in expiry.items():
        for start in range(0, len(pairs), CHUNK * 2):
            part = pairs[start : start + CHUNK * 2]
            yield from single("ZADD", k.certification_expiry(status, bucket), *part)
    if dangling:
        yield from single("SREM", k.all_training_certifications(bucket), *dangling)
    yield from single(
        "HSET",
        k.credential_stats(bucket),
        "claimed",
        claimed,
        "claim_ms_sum",
        claim_ms,
        "claim_n",
        claim_n,
        "set:all",
        len(ids) - len(dangling),
        *(item for s in CERTIFICATION_STATUSES for item in (f"set:{s}", len(by_status[s]))),
    )
    return True


def reindex(ctx: Context, progress: Progress | None = None) -> Op[ReindexReport]:
    """Drop and rebuild every derived key; returns what was counted.

    One rebuild at a time per prefix: a second reindex waits for the first to finish (a lock with
    a renewed lease), then rebuilds again. Two interleaved rebuilds would not fail, but one could
    set the index marker while the other still rewrites figures that writes then change.
    """
    # The per-course day buckets are rebuilt in this facade's zone: refused (nothing written) if
    # the store's are in another one.
    yield from zone.check_before_write(ctx)
    token = secrets.token_hex(8)
    yield from _acquire(ctx, token)
    try:
        report = yield from _holding(ctx, token, _rebuild(ctx, token, progress))
    except BaseException as exc:
        if not isinstance(exc, GeneratorExit):  # a closed generator may not yield
            with suppress(TrainingAnalyticsError):  # the first error is the one to report
                yield from _lease(ctx, "release", token)
        raise
    yield from _lease(ctx, "release", token)
    yield from zone.remember_after_write(ctx)
    return report


def _acquire(ctx: Context, token: str) -> Op[None]:
    lock = ctx.keys.reindex_lock()
    while not (yield from single("SET", lock, token, "NX", "PX", LEASE_MS)):
        # A pause on the server (BLPOP of a key nobody writes): operations do no I/O of their own.
        yield from single("BLPOP", ctx.keys.reindex_idle(), WAIT_SECONDS)


def _lease(ctx: Context, mode: str, token: str) -> Op[int]:
    reply = yield batch(ScriptCall(LOCK, (ctx.keys.reindex_lock(),), (mode, token, LEASE_MS)))
    return int(reply[0])


def _holding(ctx: Context, token: str, op: Op[ReindexReport]) -> Op[ReindexReport]:
    """Run ``op``, renewing the lock's lease every third of it between its round trips."""
    renewed = monotonic()
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            request = op.send(reply) if error is None else op.throw(error)
        except StopIteration as stop:
            result: ReindexReport = stop.value
            return result
        if monotonic() - renewed > LEASE_MS / 3000:
            if not (yield from _lease(ctx, "extend", token)):
                op.close()
                raise ConcurrentUpdateError(
                    "reindex stalled past its lease and another one took over; run it again"
                )
            renewed = monotonic()
        try:
            reply, error = (yield request), None
        except (
            TrainingAnalyticsError
        ) as exc:  # the server refused a round trip: the rebuild decides
            reply, error = None, exc


def _rebuild(ctx: Context, token: str, progress: Progress | None) -> Op[ReindexReport]:
    if ctx.keys.cluster:
        return (yield from _rebuild_cluster(ctx, token, progress))
    k = ctx.keys
    report = ReindexReport()
    notify: Progress = progress or (lambda stage, done: None)
    yield from single("DEL", k.index_marker())
    derived = yield from _scan(k.derived_pattern())
    for start in range(0, len(derived), CHUNK):
        yield from single("UNLINK", *derived[start : start + CHUNK])
    # A course appears in the catalog, or in a learner set (completions the older system
    # recorded need not come with an enrolment).
    enrollment_keys = yield from _scan(k.course_enrollments_pattern())
    completion_keys = yield from _scan(k.course_completions_pattern())
    catalog_ids = yield from single("ZRANGE", k.all_training_courses(), 0, -1)
    found = {key[len(k.course_enrollments("x")) - 1 :] for key in enrollment_keys}
    found |= {key[len(k.course_completions("x")) - 1 :] for key in completion_keys}
    course_ids = []
    for course_id in sorted(found | set(catalog_ids)):
        try:
            course_ids.append(check_id(course_id, "course id"))
        except InvalidIdError:
            report.skipped_course_ids.append(course_id)
    for done, course_id in enumerate(course_ids, 1):
        yield from _rebuild_course_stats(ctx, course_id, report)
        notify("courses", done)
    report.courses = len(course_ids)
    yield from _rebuild_unenrolled_progress(ctx, report)
    notify("progress saved before enrolment", report.unenrolled_progress)
    yield from _rebuild_day_counts(ctx, "enrollment", report)
    notify("enrollment series", report.enrollment_events)
    yield from _rebuild_day_counts(ctx, "completion", report)
    notify("completion series", report.completion_events)
    yield from _rebuild_certifications(ctx, report, token)
    notify("certifications", report.certifications)
    # Figures may have changed: readers watching the version refetch.
    yield batch(cmd("SET", k.index_marker(), "1"), cmd("INCR", k.store_version()))
    return report


def _scan_store(ctx: Context, pattern: str) -> Op[list[str]]:
    """Every key matching ``pattern`` on every primary of a cluster."""
    found: list[str] = []
    nodes: list[str] | None = None
    cursor = "0"
    while nodes is None or nodes:
        keys, nodes, cursor = yield from scan_page(
            ctx, nodes, cursor, "MATCH", pattern, "COUNT", 5000
        )
        found.extend(str(key) for key in keys)
    return found


def _tagged_courses(keys: list[str], head: str) -> set[str]:
    """Course ids of keys ``head{course}`` (a course's set or series in the cluster layout)."""
    return {key[len(head) + 1 : -1] for key in keys if key.endswith("}")}


def _rebuild_cluster(ctx: Context, token: str, progress: Progress | None) -> Op[ReindexReport]:
    """The same rebuild on a cluster: tag by tag (each course, each certificate bucket), the
    keyspace walked primary by primary; the course registry rebuilt from what was found.

    Markers go first (every tag's, the ``{:meta}`` one included), so writes to a tag with data
    are refused until its figures are back; then the other derived keys. Each key is dropped
    with its own UNLINK (keys of different slots cannot share one command).
    """
    k = ctx.keys
    report = ReindexReport()
    notify: Progress = progress or (lambda stage, done: None)
    escaped = glob_escape(k.prefix)
    for pattern in (f"{escaped}training:agg:schema:*", k.derived_pattern()):
        derived = yield from _scan_store(ctx, pattern)
        for start in range(0, len(derived), CHUNK):
            yield from pipeline([cmd("UNLINK", key) for key in derived[start : start + CHUNK]])
    found: set[str] = set()
    for sample in (
        k.course_enrollments("x"),
        k.course_completions("x"),
        k.course_enrollment_timeseries("x"),
        k.course_completion_timeseries("x"),
    ):
        head = sample[: -len("{x}")]
        keys = yield from _scan_store(ctx, glob_escape(head) + "{*}")
        found |= _tagged_courses(keys, head)
    catalog_ids = yield from single("ZRANGE", k.all_training_courses(), 0, -1)
    course_ids = []
    for course_id in sorted(found | {str(c) for c in catalog_ids}):
        try:
            course_ids.append(check_id(course_id, "course id"))
        except InvalidIdError:
            report.skipped_course_ids.append(course_id)
    for done, course_id in enumerate(course_ids, 1):
        yield from _rebuild_course_stats(ctx, course_id, report)
        yield from _rebuild_day_counts(ctx, "enrollment", report, course_id)
        yield from _rebuild_day_counts(ctx, "completion", report, course_id)
        notify("courses", done)
    report.courses = len(course_ids)
    with_progress: set[str] = set()
    yield from _rebuild_unenrolled_progress(ctx, report, with_progress)
    notify("progress saved before enrolment", report.unenrolled_progress)
    registry = sorted(set(course_ids) | with_progress)
    for start in range(0, len(registry), CHUNK):
        yield from single("SADD", k.course_registry(), *registry[start : start + CHUNK])
    buckets = []
    for bucket in k.certification_buckets():
        if (yield from _rebuild_certifications(ctx, report, token, bucket)):
            buckets.append(bucket)
    notify("certifications", report.certifications)
    # The marker and version of every tag with data (readers watching the version refetch;
    # an empty tag's first write sets its own), then the store's marker.
    tags = [*registry, *buckets]
    for start in range(0, len(tags), CHUNK):
        part = tags[start : start + CHUNK]
        yield from pipeline(
            [cmd("SET", k.index_marker(t), "1") for t in part]
            + [cmd("INCR", k.store_version(t)) for t in part]
        )
    yield from single("SET", k.index_marker(), "1")
    return report
