"""Cursor-paginated listings: certifications, the soonest-expiring certificates, and every
course's analytics. None of them reads a whole set in one call.

A cursor is opaque to clients (URL-safe base64 of a small JSON document). Certifications are
walked with SSCAN, each batch sorted by id, and a cursor names the scan position and the last
id returned from that batch; so an id present for the whole walk is returned, and one added or
removed meanwhile may or may not be (SSCAN's own guarantee). A page with a course filter scans
a bounded number of batches and may come back short, or empty, with a cursor to go on.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import timedelta
from typing import Any, Final

from ._codec import certification_from_hash
from ._context import Context
from ._protocol import Op, batch, cmd, gather, pipeline, single
from ._time import epoch_ms, parse_timestamp_ms
from .catalog import get_training_course
from .courses import get_course_detailed_analytics
from .errors import InvalidIdError, InvalidInputError, NotFoundError
from .keys import check_id
from .types import (
    CertificationPage,
    CourseAnalyticsItem,
    CourseAnalyticsPage,
    CourseDetailedAnalytics,
    TrainingCertificationRecord,
    TrainingCourse,
)

MAX_PAGE: Final = 1000
DEFAULT_CERTIFICATION_PAGE: Final = 50
DEFAULT_COURSE_PAGE: Final = 20
MAX_EXPIRY_DAYS: Final = 3660
# SSCAN calls one page may make (a course filter can skip most of what a batch holds).
_SCAN_BUDGET: Final = 10
_SCAN_COUNT: Final = 200


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"limit must be an integer from 1 to {MAX_PAGE}")
    return limit


def encode_cursor(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, fields: tuple[str, ...]) -> dict[str, Any]:
    """The cursor's state; InvalidInputError unless it has exactly ``fields``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        state = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInputError("malformed cursor") from exc
    if not isinstance(state, dict) or set(state) != set(fields):
        raise InvalidInputError("malformed cursor")
    return state


def _certification_key(ctx: Context, cert_id: str) -> str | None:
    try:
        return ctx.keys.training_certification(cert_id)
    except InvalidIdError:  # an id the older system stored that cannot name a key
        return None


def list_certifications(
    ctx: Context,
    *,
    status: str | None = None,
    course_id: str | None = None,
    limit: int = DEFAULT_CERTIFICATION_PAGE,
    cursor: str | None = None,
) -> Op[CertificationPage]:
    """Certifications by id within each scan batch; ``status`` (as stored) and ``course_id``
    filter. ``next_cursor`` is None when the walk is over."""
    k = ctx.keys
    limit = _check_limit(limit)
    key = k.all_training_certifications() if status is None else k.certifications_by_status(status)
    if course_id is not None:
        check_id(course_id, "course id")
    scan, after = 0, None
    if cursor is not None:
        state = decode_cursor(cursor, ("scan", "after"))
        scan, after = state["scan"], state["after"]
        # SCAN cursors are unsigned 64-bit; a bool is an int to Python but not to the server.
        if (
            isinstance(scan, bool)
            or not isinstance(scan, int)
            or not 0 <= scan < 2**64
            or not isinstance(after, str | None)
        ):
            raise InvalidInputError("malformed cursor")
    items: list[TrainingCertificationRecord] = []
    for _ in range(_SCAN_BUDGET):
        next_scan, members = yield from single("SSCAN", key, scan, "COUNT", _SCAN_COUNT)
        next_scan = int(next_scan)
        candidates = sorted(m for m in members if after is None or m > after)
        if course_id is None:  # every candidate counts: read no more than the page needs
            candidates = candidates[: limit - len(items)]
        keyed = [(m, key_name) for m in candidates if (key_name := _certification_key(ctx, m))]
        records = yield from pipeline([cmd("HGETALL", key_name) for _, key_name in keyed])
        for position, data in enumerate(records):
            record = certification_from_hash(data)
            if record is None or (course_id is not None and record.course_id != course_id):
                continue
            items.append(record)
            if len(items) == limit:
                member = keyed[position][0]
                if any(m > member for m in members):  # the batch has more: resume within it
                    resume = encode_cursor({"scan": scan, "after": member})
                    return CertificationPage(items=items, next_cursor=resume)
                return CertificationPage(items=items, next_cursor=_next(next_scan))
        scan, after = next_scan, None
        if scan == 0:
            return CertificationPage(items=items, next_cursor=None)
    return CertificationPage(items=items, next_cursor=_next(scan))


def _next(scan: int) -> str | None:
    return None if scan == 0 else encode_cursor({"scan": scan, "after": None})


def get_expiring_certifications(
    ctx: Context, *, days: int = 30, limit: int = DEFAULT_CERTIFICATION_PAGE
) -> Op[list[TrainingCertificationRecord]]:
    """Issued or claimed certificates expiring after now and within ``days``, soonest first.

    Read from the expiry index (O(log n + limit)), the window of credential analytics'
    ``expiringIn30Days``.
    """
    limit = _check_limit(limit)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_EXPIRY_DAYS:
        raise InvalidInputError(f"days must be an integer from 1 to {MAX_EXPIRY_DAYS}")
    k = ctx.keys
    now = ctx.now()
    low, high = f"({epoch_ms(now)}", epoch_ms(now + timedelta(days=days))
    issued, claimed = yield batch(
        cmd("ZRANGEBYSCORE", k.certification_expiry("issued"), low, high, "LIMIT", 0, limit),
        cmd("ZRANGEBYSCORE", k.certification_expiry("claimed"), low, high, "LIMIT", 0, limit),
    )
    ids = sorted({*issued, *claimed})
    keyed = [key_name for key_name in (_certification_key(ctx, i) for i in ids) if key_name]
    records = yield from pipeline([cmd("HGETALL", key_name) for key_name in keyed])
    found = [r for r in (certification_from_hash(data) for data in records) if r is not None]
    found.sort(key=lambda r: (parse_timestamp_ms(r.expires_at) or 0, r.id))
    return found[:limit]


def _finite(number: int) -> bool:
    try:
        return math.isfinite(float(number))
    except OverflowError:
        return False


def _found_or_none(op: Op[Any]) -> Op[Any]:
    try:
        return (yield from op)
    except NotFoundError:  # deleted between the listing and this read
        return None


def list_course_analytics(
    ctx: Context, *, limit: int = DEFAULT_COURSE_PAGE, cursor: str | None = None
) -> Op[CourseAnalyticsPage]:
    """Each course of the catalog (by ``order``) with its detailed analytics.

    A page costs three round trips whatever its size: the page of ids, then every course's
    reads side by side (see ``gather``): its record and counters, then its modules' drop-off.
    """
    limit = _check_limit(limit)
    k = ctx.keys
    start = 0
    if cursor is not None:
        state = decode_cursor(cursor, ("after", "order"))
        after, order = state["after"], state["order"]
        # Scores are doubles on the server: an order no double holds cannot be one we wrote.
        if (
            not isinstance(after, str)
            or isinstance(order, bool)
            or not isinstance(order, int)
            or not _finite(order)
        ):
            raise InvalidInputError("malformed cursor")
        # Resume after the last course shown; if it was deleted meanwhile, after where it
        # stood (courses are ordered by ``order``, then id).
        rank = yield from single("ZRANK", k.all_training_courses(), after)
        if rank is not None:
            start = int(rank) + 1
        else:
            before, tied = yield batch(
                cmd("ZCOUNT", k.all_training_courses(), "-inf", f"({order}"),
                cmd("ZRANGEBYSCORE", k.all_training_courses(), order, order),
            )
            start = int(before) + sum(1 for i in tied if i < after)
    ids = list((yield from single("ZRANGE", k.all_training_courses(), start, start + limit)))
    more = len(ids) > limit
    ids = ids[:limit]
    courses: list[Any] = yield from gather(
        [_found_or_none(get_training_course(ctx, i)) for i in ids]
        + [_found_or_none(get_course_detailed_analytics(ctx, i)) for i in ids]
    )
    items = []
    last_order: dict[str, int] = {}
    for course, analytics in zip(courses[: len(ids)], courses[len(ids) :], strict=True):
        if not isinstance(course, TrainingCourse) or not isinstance(
            analytics, CourseDetailedAnalytics
        ):
            continue
        last_order[course.id] = course.order
        items.append(
            CourseAnalyticsItem(
                id=course.id,
                title=course.title,
                status="published" if course.is_published else "draft",
                analytics=analytics,
            )
        )
    next_cursor = None
    if more and items:
        last = items[-1]
        next_cursor = encode_cursor({"after": last.id, "order": last_order[last.id]})
    return CourseAnalyticsPage(items=items, next_cursor=next_cursor)
