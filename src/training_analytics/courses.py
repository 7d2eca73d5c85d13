"""Course analytics and the overview (the seed's courses.ts), read from aggregates.

Where the seed loaded every enrolled learner's progress hash, these read counters: a course's
figures cost two round trips whatever its number of learners (counts and sums, then the
modules' drop-off), the overview one SCARD per course.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from ._context import Context
from ._index import course_marker, ensure_fresh, require_index
from ._protocol import Command, Op, batch, cardinalities, cardinalities_per_slot, cmd, single
from .analytics import module_dropoffs
from .errors import CourseNotFoundError, StoreError
from .helpers import calculate_percentage, js_round, round_to, safe_parse_json
from .keys import check_id
from .types import CourseDetailedAnalytics, CourseModule, TrainingOverviewMetrics

_MODULES = TypeAdapter(list[CourseModule])
_MS_PER_HOUR = 3_600_000
_BUCKET_SCARDS = "certificate-bucket-scards"  # ctx.memo: the cluster layout's SCARD per bucket


def _int(value: Any) -> int:
    return int(value) if value else 0


def get_course_detailed_analytics(ctx: Context, course_id: str) -> Op[CourseDetailedAnalytics]:
    """Enrolments, completions, completion rate, average score and hours to complete, drop-off.

    Raises :class:`CourseNotFoundError` for a course that is neither in the catalog nor has any
    recorded activity (a typo would otherwise read as a course nobody took). A course with
    events but no catalog entry, as the older system's stores have, still answers.
    """
    k = ctx.keys
    traces = (
        k.course_enrollments(course_id),
        k.course_completions(course_id),
        k.course_stats(course_id),
        k.course_unenrolled_progress(course_id),
    )
    # One EXISTS over the course's own keys: the catalog entry, or any trace of activity. On a
    # cluster the catalog lives in another slot: its EXISTS goes apart, in the same round trip.
    if k.cluster:
        known_calls: tuple[Command, ...] = (
            cmd("EXISTS", k.training_course(course_id)),
            cmd("EXISTS", *traces),
        )
    else:
        known_calls = (cmd("EXISTS", k.training_course(course_id), *traces),)
    indexed, *known_counts, modules_json, enrolled, completed, stats = yield batch(
        cmd("EXISTS", course_marker(ctx, course_id)),
        *known_calls,
        cmd("HGET", k.training_course(course_id), "modules"),
        cmd("SCARD", k.course_enrollments(course_id)),
        cmd("SCARD", k.course_completions(course_id)),
        cmd(
            "HMGET",
            k.course_stats(course_id),
            "score_milli_sum",
            "score_n",
            "time_ms_sum",
            "time_n",
            "set:enrollments",
            "set:completions",
        ),
    )
    if not indexed:
        yield from require_index(ctx, course_id)
    if not sum(known_counts):
        raise CourseNotFoundError(
            f"no course {course_id!r}: it is not in the catalog and has no recorded activity"
        )
    yield from ensure_fresh(
        f"course {course_id}",
        k.course_stats(course_id),
        [
            ("enrollments", k.course_enrollments(course_id), enrolled, stats[4]),
            ("completions", k.course_completions(course_id), completed, stats[5]),
        ],
    )
    try:
        modules = _MODULES.validate_python(safe_parse_json(modules_json, []))
    except ValidationError as exc:
        raise StoreError(f"modules of course {course_id} are malformed: {exc}") from exc
    dropoff = yield from module_dropoffs(ctx, course_id, modules)
    score_sum, score_n, time_sum, time_n = (_int(v) for v in stats[:4])
    return CourseDetailedAnalytics(
        enrollments=int(enrolled),
        completions=int(completed),
        completion_rate=calculate_percentage(int(completed), int(enrolled)),
        average_score=js_round(score_sum / 1000 / score_n) if score_n > 0 else 0,
        average_time_to_complete=round_to(time_sum / time_n / _MS_PER_HOUR, 1) if time_n > 0 else 0,
        dropoff_rates=dropoff,
    )


def _course_rates(ctx: Context) -> Op[tuple[list[str], set[str], list[int], list[int], int]]:
    """Course ids, published ids, enrolments and completions per course, certificate count."""
    k = ctx.keys
    if k.cluster:
        return (yield from _cluster_course_rates(ctx))
    ids, published, certificates = yield batch(
        cmd("ZRANGE", k.all_training_courses(), 0, -1),
        cmd("SMEMBERS", k.published_training_courses()),
        cmd("SCARD", k.all_training_certifications()),
    )
    keys = []
    for course_id in ids:
        keys.append(k.course_enrollments(course_id))
        keys.append(k.course_completions(course_id))
    replies = yield from cardinalities(keys)
    enrolled, completed = replies[0::2], replies[1::2]
    return list(ids), set(published), enrolled, completed, int(certificates)


def _cluster_course_rates(
    ctx: Context,
) -> Op[tuple[list[str], set[str], list[int], list[int], int]]:
    """``_course_rates`` on the cluster layout, in the same two round trips (each one pipeline
    per node, nodes side by side): the catalog's indexes (one slot) with every certificate
    bucket's SCARD, summed; then one ``cardinalities.lua`` call per course (each course is a
    slot of its own). Base sets only, as on one server: no marker to check."""
    k = ctx.keys
    buckets: tuple[Command, ...] | None = ctx.memo.get(_BUCKET_SCARDS)
    if buckets is None:  # made once per facade: a bucket's key names never change
        buckets = ctx.memo[_BUCKET_SCARDS] = tuple(
            cmd("SCARD", k.all_training_certifications(b)) for b in k.certification_buckets()
        )
    ids, published, *certificates = yield batch(
        cmd("ZRANGE", k.all_training_courses(), 0, -1),
        cmd("SMEMBERS", k.published_training_courses()),
        *buckets,
    )
    counts = yield from cardinalities_per_slot(
        [(k.course_enrollments(c), k.course_completions(c)) for c in ids]
    )
    enrolled = [pair[0] for pair in counts]
    completed = [pair[1] for pair in counts]
    return list(ids), set(published), enrolled, completed, sum(int(n) for n in certificates)


def _average_completion(
    ids: list[str], published: set[str], enrolled: list[int], completed: list[int]
) -> float:
    rates = [
        calculate_percentage(c, e)
        for course_id, e, c in zip(ids, enrolled, completed, strict=True)
        if course_id in published and e > 0
    ]
    return round_to(sum(rates) / len(rates), 1) if rates else 0


def calculate_average_completion(ctx: Context) -> Op[float]:
    """Mean completion rate (percent) over published courses that have enrolments."""
    ids, published, enrolled, completed, _ = yield from _course_rates(ctx)
    return _average_completion(ids, published, enrolled, completed)


def get_training_overview_metrics(ctx: Context) -> Op[TrainingOverviewMetrics]:
    ids, published, enrolled, completed, certificates = yield from _course_rates(ctx)
    published_count = sum(1 for course_id in ids if course_id in published)
    return TrainingOverviewMetrics(
        total_courses=len(ids),
        published_courses=published_count,
        draft_courses=len(ids) - published_count,
        total_enrollments=sum(enrolled),
        average_completion_rate=_average_completion(ids, published, enrolled, completed),
        total_certifications=certificates,
    )


def invalidate_course_cache(ctx: Context, course_id: str) -> Op[int]:
    """Delete a course's cached analytics and the overview; returns how many keys were deleted.

    0 on the cluster layout, with nothing sent: it has no caches (this library never fills
    them; the older system's readers, who do, cannot read a cluster store)."""
    k = ctx.keys
    if k.cluster:
        check_id(course_id, "course id")
        return 0
    deleted = yield from single(
        "DEL", k.course_analytics_cache(course_id), k.overview_metrics_cache()
    )
    return int(deleted)


def invalidate_all_training_caches(ctx: Context) -> Op[int]:
    """Delete every cached analytics result; returns how many keys were deleted (0 on the
    cluster layout, with nothing sent: see ``invalidate_course_cache``)."""
    k = ctx.keys
    if k.cluster:
        return 0
    deleted = yield from single("DEL", k.overview_metrics_cache(), k.credential_analytics_cache())
    cursor = "0"
    while True:
        cursor, found = yield from single(
            "SCAN", cursor, "MATCH", k.course_analytics_cache_pattern(), "COUNT", 1000
        )
        if found:
            deleted += yield from single("DEL", *found)
        if str(cursor) == "0":
            return int(deleted)
