"""Cursor-paginated listings: certifications, the soonest-expiring certificates, and every
course's analytics. None of them reads a whole set in one call.

A cursor is opaque to clients (URL-safe base64 of a small JSON document). Certifications are
walked with SSCAN, each batch sorted by id, and a cursor names the scan position and the last
id returned from that batch; so an id present for the whole walk is returned, and one added or
removed meanwhile may or may not be (SSCAN's own guarantee). A page with a course filter scans
a bounded number of batches and may come back short, or empty, with a cursor to go on.

On a cluster the certificates sit in buckets (``{:cert:NNN}``, one slot each): the walk goes
through the buckets in order, each with SSCAN as above, and its cursor also names the bucket.
A round scans a window of buckets side by side (one batch: one pipeline per node), the window
widening while the page is not full (``next_window``); replies past a bucket whose scan is not
over are dropped (read again on the next round), so the order stays "bucket by bucket, each
batch by id".
The soonest-expiring certificates are the first ``limit`` of each bucket's expiry index,
merged.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
# Buckets a cluster walk scans in its first round; widened while the page is short.
_FIRST_WINDOW: Final = 16


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"limit must be an integer from 1 to {MAX_PAGE}")
    return limit


def encode_cursor(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, fields: tuple[str, ...]) -> dict[str, Any]:
    """The cursor's state; InvalidInputError unless it has exactly ``fields``."""
    if not isinstance(cursor, str):
        raise InvalidInputError(f"a cursor is text, not {type(cursor).__name__}")
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
    if k.cluster:
        if status is not None:
            k.certifications_by_status(status, k.certification_buckets()[0])  # checks it
        if course_id is not None:
            check_id(course_id, "course id")
        start = decode_bucket_cursor(cursor, k.cert_buckets)
        return (yield from _list_buckets(ctx, status, course_id, limit, start))
    key = k.all_training_certifications() if status is None else k.certifications_by_status(status)
    if course_id is not None:
        check_id(course_id, "course id")
    scan, after = 0, None
    if cursor is not None:
        state = decode_cursor(cursor, ("scan", "after"))
        scan, after = state["scan"], state["after"]
        # SCAN cursors are unsigned 64-bit; a bool is an int to Python but not to the server.
        if not _scan_cursor(scan) or not isinstance(after, str | None):
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


def _scan_cursor(scan: Any) -> bool:
    return not isinstance(scan, bool) and isinstance(scan, int) and 0 <= scan < 2**64


@dataclass(frozen=True, slots=True)
class BucketPosition:
    """Where a walk over the certificate buckets of a cluster resumes: bucket number ``bucket``
    at SSCAN cursor ``scan``, past id ``after`` of the batch that cursor gives."""

    bucket: int = 0
    scan: int = 0
    after: str | None = None


def encode_bucket_cursor(position: BucketPosition | None) -> str | None:
    if position is None:
        return None
    return encode_cursor(
        {"bucket": position.bucket, "scan": position.scan, "after": position.after}
    )


def decode_bucket_cursor(cursor: str | None, buckets: int) -> BucketPosition:
    """The position a cluster listing's cursor names; InvalidInputError for anything else
    (a single server's cursor, a bucket this store does not have)."""
    if cursor is None:
        return BucketPosition()
    state = decode_cursor(cursor, ("bucket", "scan", "after"))
    bucket, scan, after = state["bucket"], state["scan"], state["after"]
    if (
        isinstance(bucket, bool)
        or not isinstance(bucket, int)
        or not 0 <= bucket < buckets
        or not _scan_cursor(scan)
        or not isinstance(after, str | None)
    ):
        raise InvalidInputError("malformed cursor")
    return BucketPosition(bucket, scan, after)


def following(position: BucketPosition, next_scan: int, buckets: int) -> BucketPosition | None:
    """Where the walk goes once the batch at ``position`` is done: the same bucket at the
    server's next cursor, else the next bucket from its start; None past the last bucket."""
    if next_scan != 0:
        return BucketPosition(position.bucket, next_scan)
    if position.bucket + 1 < buckets:
        return BucketPosition(position.bucket + 1)
    return None


def next_window(window: int, used: int, whole: bool, need: int, found: int, scanned: int) -> int:
    """How many buckets the next round of a cluster listing scans. After a round that ended
    inside a bucket (``whole`` false), about as many as it used: more would be dropped again.
    Else at least twice as many, and as many as the items found per bucket so far say the page
    still needs (twice that, for the spread)."""
    if not whole:
        return max(2, used)
    if not found:
        return window * 2
    return max(window * 2, math.ceil(2 * need * scanned / found))


def _list_buckets(
    ctx: Context,
    status: str | None,
    course_id: str | None,
    limit: int,
    start: BucketPosition,
) -> Op[CertificationPage]:
    k = ctx.keys
    tags = k.certification_buckets()
    count = len(tags)

    def key(number: int) -> str:
        tag = tags[number]
        return (
            k.all_training_certifications(tag)
            if status is None
            else k.certifications_by_status(status, tag)
        )

    items: list[TrainingCertificationRecord] = []
    position: BucketPosition | None = start
    window = _FIRST_WINDOW
    scanned = 0
    for _ in range(_SCAN_BUDGET):
        if position is None:
            break
        # This round: the current bucket from its cursor, then the next ones from their start.
        numbers = range(position.bucket, min(position.bucket + window, count))
        scans = yield batch(
            *(
                cmd(
                    "SSCAN",
                    key(n),
                    position.scan if n == position.bucket else 0,
                    "COUNT",
                    _SCAN_COUNT,
                )
                for n in numbers
            )
        )
        # The batches this round may use, in walk order: up to the first whose bucket is not
        # scanned to its end (the buckets after it come later in the walk).
        steps: list[tuple[BucketPosition, int, list[str]]] = []
        for n, (next_scan, members) in zip(numbers, scans, strict=True):
            here = position if n == position.bucket else BucketPosition(n)
            steps.append((here, int(next_scan), list(members)))
            if int(next_scan) != 0:
                break
        wanted: list[tuple[int, str]] = []
        for index, (here, _, members) in enumerate(steps):
            candidates = sorted(m for m in members if here.after is None or m > here.after)
            wanted.extend((index, m) for m in candidates)
        cut = None
        if course_id is None and len(wanted) > limit - len(items):
            # Every candidate counts: read no more than the page needs. Should some of those
            # vanish meanwhile (deleted), the next round resumes after the last one read.
            wanted = wanted[: limit - len(items)]
            cut = wanted[-1]
        keyed = [(i, m, key_name) for i, m in wanted if (key_name := _certification_key(ctx, m))]
        records = yield from pipeline([cmd("HGETALL", key_name) for _, _, key_name in keyed])
        for (index, member, _), data in zip(keyed, records, strict=True):
            record = certification_from_hash(data)
            if record is None or (course_id is not None and record.course_id != course_id):
                continue
            items.append(record)
            if len(items) == limit:
                here, next_scan, members = steps[index]
                if any(m > member for m in members):  # the batch has more: resume within it
                    resume = BucketPosition(here.bucket, here.scan, member)
                    return CertificationPage(items=items, next_cursor=encode_bucket_cursor(resume))
                after_batch = following(here, next_scan, count)
                return CertificationPage(items=items, next_cursor=encode_bucket_cursor(after_batch))
        if cut is not None:
            index, member = cut
            steps = steps[: index + 1]
            here = steps[index][0]
            position = BucketPosition(here.bucket, here.scan, member)
        else:
            here, next_scan, _ = steps[-1]
            position = following(here, next_scan, count)
        scanned += len(steps)
        whole = len(steps) == len(numbers)
        window = next_window(window, len(steps), whole, limit - len(items), len(items), scanned)
    return CertificationPage(items=items, next_cursor=encode_bucket_cursor(position))


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
    if k.cluster:
        return (yield from _expiring_in_buckets(ctx, low, high, limit))
    issued, claimed = yield batch(
        cmd("ZRANGEBYSCORE", k.certification_expiry("issued"), low, high, "LIMIT", 0, limit),
        cmd("ZRANGEBYSCORE", k.certification_expiry("claimed"), low, high, "LIMIT", 0, limit),
    )
    return (yield from _read_soonest(ctx, [*issued, *claimed], limit))


def score_pairs(reply: Sequence[Any]) -> list[tuple[float, str]]:
    """(score, member) of a ZRANGEBYSCORE ... WITHSCORES reply: flat (RESP2) or pairs (RESP3)."""
    if reply and isinstance(reply[0], list | tuple):
        return [(float(score), str(member)) for member, score in reply]
    return [
        (float(score), str(member)) for member, score in zip(reply[0::2], reply[1::2], strict=True)
    ]


def merge_soonest(parts: Iterable[Sequence[tuple[float, str]]], limit: int) -> list[str]:
    """The first ``limit`` members by (score, member) of sorted parts (each bucket's first
    ``limit``: the first ``limit`` overall are among them), as one sorted set would give them:
    ties by member, compared as the server compares (bytes of UTF-8, the order of code
    points)."""
    return [member for _, member in heapq.merge(*parts)][:limit]


def _expiring_in_buckets(
    ctx: Context, low: str, high: int, limit: int
) -> Op[list[TrainingCertificationRecord]]:
    """The single server's answer from the buckets: each bucket's first ``limit`` of either
    expiry index (one batch, one pipeline per node), merged per index into the first ``limit``
    overall (the ids one ZRANGEBYSCORE LIMIT would give), then read and ordered as there."""
    k = ctx.keys
    tags = k.certification_buckets()
    replies = yield batch(
        *(
            cmd(
                "ZRANGEBYSCORE",
                k.certification_expiry(status, tag),
                low,
                high,
                "WITHSCORES",
                "LIMIT",
                0,
                limit,
            )
            for status in ("issued", "claimed")
            for tag in tags
        )
    )
    issued = merge_soonest(map(score_pairs, replies[: len(tags)]), limit)
    claimed = merge_soonest(map(score_pairs, replies[len(tags) :]), limit)
    return (yield from _read_soonest(ctx, [*issued, *claimed], limit))


def _read_soonest(
    ctx: Context, ids: Iterable[str], limit: int
) -> Op[list[TrainingCertificationRecord]]:
    keyed = [
        key_name for key_name in (_certification_key(ctx, i) for i in sorted(set(ids))) if key_name
    ]
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
