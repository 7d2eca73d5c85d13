"""Certifications (the seed's certifications.ts) with a lifecycle the server enforces.

issued -> claimed | expired | revoked; claimed -> expired | revoked; expired -> revoked.
Anything else raises IllegalTransitionError, an unknown id CertificationNotFoundError, a claim
at or after the expiry CertificationExpiredError; in each case nothing changes. A certificate
whose ``expiresAt`` has passed counts as expired in the figures even before anyone marks it so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from ._codec import certification_from_hash, coerce
from ._context import Context
from ._index import NOT_INDEXED_MESSAGE, SizeCheck, ensure_fresh, require_index
from ._protocol import Call, Command, Op, ScriptCall, batch, cmd, load_script, pipeline, single
from ._time import epoch_ms
from ._writes import EventBatch, apply_one
from .errors import CertificationNotFoundError, CodeUnavailableError, NotIndexedError
from .keys import CERTIFICATION_STATUSES
from .types import CredentialStats, TrainingCertificationRecord

_SETS = ("all", *CERTIFICATION_STATUSES)


def get_all_training_certifications(ctx: Context) -> Op[list[TrainingCertificationRecord]]:
    """Every certification record (a listing: it reads each one)."""
    k = ctx.keys
    if k.cluster:  # every bucket's ids in one batch (one pipeline per node)
        parts = yield batch(
            *(cmd("SMEMBERS", k.all_training_certifications(b)) for b in k.certification_buckets())
        )
        ordered = sorted(i for part in parts for i in part)
    else:
        ids = yield from single("SMEMBERS", k.all_training_certifications())
        ordered = sorted(ids)
    replies = yield from pipeline([cmd("HGETALL", k.training_certification(i)) for i in ordered])
    records = [certification_from_hash(r) for r in replies]
    return [r for r in records if r is not None]


def get_training_certification(
    ctx: Context, cert_id: str
) -> Op[TrainingCertificationRecord | None]:
    data = yield from single("HGETALL", ctx.keys.training_certification(cert_id))
    return certification_from_hash(data)


def overdue_counts(ctx: Context, now: datetime) -> tuple[Any, ...]:
    """Calls counting issued and claimed certificates whose expiry is at or before ``now``."""
    k = ctx.keys
    ms = epoch_ms(now)
    return (
        cmd("ZCOUNT", k.certification_expiry("issued"), "-inf", ms),
        cmd("ZCOUNT", k.certification_expiry("claimed"), "-inf", ms),
    )


#: Fields of the credential stats hash: the sizes this library recorded for the sets above.
RECORDED_SIZES = tuple(f"set:{name}" for name in _SETS)


def _set_keys(ctx: Context) -> tuple[str, ...]:
    k = ctx.keys
    return (
        k.all_training_certifications(),
        *map(k.certifications_by_status, CERTIFICATION_STATUSES),
    )


def status_sizes(ctx: Context) -> tuple[Command, ...]:
    """SCARD of the all-certificates set and the status sets, to go in the caller's round trip.

    Plain commands rather than a script: a read-only ACL user, or a server at its maxmemory
    that refuses to load code, can still run them."""
    return tuple(cmd("SCARD", key) for key in _set_keys(ctx))


def checked_status_sizes(ctx: Context, sizes: list[Any], recorded: list[Any]) -> Op[list[int]]:
    """The sizes (all, issued, claimed, expired, revoked) read by :func:`status_sizes`;
    StaleIndexError unless they equal the ``recorded`` ones (RECORDED_SIZES of the stats hash):
    another writer changed the sets since the derived keys were built."""
    checks = list(zip(_SETS, _set_keys(ctx), sizes, recorded, strict=True))
    yield from ensure_fresh("the certifications", ctx.keys.credential_stats(), checks)
    return [int(n) for n in sizes]


def get_credential_stats(ctx: Context) -> Op[CredentialStats]:
    """Certificates by effective status; ``pending`` = issued, unclaimed and not yet expired."""
    k = ctx.keys
    if k.cluster:
        return stats_from_figures((yield from bucket_figures(ctx, ctx.now())))
    indexed, overdue_issued, overdue_claimed, *sizes, recorded = yield batch(
        cmd("EXISTS", k.index_marker()),
        *overdue_counts(ctx, ctx.now()),
        *status_sizes(ctx),
        cmd("HMGET", k.credential_stats(), *RECORDED_SIZES),
    )
    if not indexed:
        yield from require_index(ctx)
    _, issued, claimed, expired, revoked = yield from checked_status_sizes(ctx, sizes, recorded)
    live_issued = int(issued) - int(overdue_issued)
    return CredentialStats(
        issued=live_issued,
        claimed=int(claimed) - int(overdue_claimed),
        pending=live_issued,
        expired=int(expired) + int(overdue_issued) + int(overdue_claimed),
        revoked=int(revoked),
    )


# --- the cluster layout: the same figures summed over the certificate buckets ----------------

#: Claims due in this window count as "expiring" in credential analytics.
EXPIRY_WINDOW = timedelta(days=30)
_STATS_FIELDS = ("claimed", "claim_ms_sum", "claim_n", *RECORDED_SIZES)
_FIGURES = load_script("certificate_figures.lua", read_only=True)


@dataclass(frozen=True, slots=True)
class CertificateFigures:
    """What credential analytics and stats are computed from: set sizes (all, then by stored
    status), certificates past or within the window of their expiry (issued or claimed), and
    the claim totals of the credential stats hash. One bucket's, or their sum."""

    total: int = 0
    issued: int = 0
    claimed: int = 0
    expired: int = 0
    revoked: int = 0
    overdue_issued: int = 0
    overdue_claimed: int = 0
    soon_issued: int = 0
    soon_claimed: int = 0
    claimed_ever: int = 0
    claim_ms_sum: int = 0
    claim_n: int = 0


def sum_figures(parts: Sequence[CertificateFigures]) -> CertificateFigures:
    """Field by field sum: every figure is a count or a sum of certificates, and each
    certificate is in exactly one bucket."""
    return CertificateFigures(
        **{f.name: sum(getattr(p, f.name) for p in parts) for f in fields(CertificateFigures)}
    )


def stats_from_figures(f: CertificateFigures) -> CredentialStats:
    """``get_credential_stats`` from (summed) figures, as the single server computes it."""
    live_issued = f.issued - f.overdue_issued
    return CredentialStats(
        issued=live_issued,
        claimed=f.claimed - f.overdue_claimed,
        pending=live_issued,
        expired=f.expired + f.overdue_issued + f.overdue_claimed,
        revoked=f.revoked,
    )


def _number(value: Any) -> int:
    return int(value) if value else 0


def _bucket_calls(ctx: Context, bucket: str, now: datetime, *, scripted: bool) -> tuple[Call, ...]:
    """One bucket's reads, all in its slot: its marker, four ZCOUNTs on its expiry indexes, its
    five set sizes and its stats hash (claim totals, recorded sizes). One read-only call that
    reads them at one moment (``certificate_figures.lua``), or the same as eleven plain
    commands, whose replies come in the same order as the call's."""
    k = ctx.keys
    now_ms, soon_ms = epoch_ms(now), epoch_ms(now + EXPIRY_WINDOW)
    marker, stats = k.index_marker(bucket), k.credential_stats(bucket)
    issued = k.certification_expiry("issued", bucket)
    claimed = k.certification_expiry("claimed", bucket)
    sets = _bucket_set_keys(ctx, bucket)
    if scripted:
        keys = (marker, stats, issued, claimed, *sets)
        return (ScriptCall(_FIGURES, keys, (now_ms, soon_ms, *_STATS_FIELDS)),)
    return (
        cmd("EXISTS", marker),
        cmd("ZCOUNT", issued, "-inf", now_ms),
        cmd("ZCOUNT", claimed, "-inf", now_ms),
        cmd("ZCOUNT", issued, f"({now_ms}", soon_ms),
        cmd("ZCOUNT", claimed, f"({now_ms}", soon_ms),
        *(cmd("SCARD", key) for key in sets),
        cmd("HMGET", stats, *_STATS_FIELDS),
    )


def _bucket_set_keys(ctx: Context, bucket: str) -> tuple[str, ...]:
    k = ctx.keys
    return (
        k.all_training_certifications(bucket),
        *(k.certifications_by_status(s, bucket) for s in CERTIFICATION_STATUSES),
    )


def bucket_figures(ctx: Context, now: datetime) -> Op[CertificateFigures]:
    """The certificate figures of a cluster store: every bucket's reads in one batch (the
    executor sends one pipeline per node), then summed.

    Each bucket is checked as the single server checks the store: a bucket without its index
    marker (``training:agg:schema:{:cert:NNN}``, set by its first write, by reindex and by
    migrate) counts as empty when its ``all`` set is empty, and raises NotIndexedError when it
    holds certificates (written by something other than this library's write path, and not
    reindexed yet); a bucket whose set sizes differ from the ones its stats hash recorded
    raises StaleIndexError, as drift does on one server.
    """
    buckets = ctx.keys.certification_buckets()
    try:
        replies = yield batch(*(_bucket_calls(ctx, b, now, scripted=True)[0] for b in buckets))
        rows = list(replies)
    except CodeUnavailableError:
        # A read-only user on nodes without the read function (or nodes at maxmemory, which
        # refuse to load it): the same reads as plain commands, as cardinalities() does.
        replies = yield batch(
            *(c for b in buckets for c in _bucket_calls(ctx, b, now, scripted=False))
        )
        width = len(replies) // len(buckets)
        rows = [replies[i * width : (i + 1) * width] for i in range(len(buckets))]
    parts: list[CertificateFigures] = []
    checks: list[tuple[str, list[SizeCheck]]] = []
    unmarked: list[str] = []
    for bucket, row in zip(buckets, rows, strict=True):
        marked, overdue_i, overdue_c, soon_i, soon_c, *counts, stats = row
        sizes = [int(n) for n in counts]
        if not marked and sizes[0]:
            unmarked.append(bucket)
        set_keys = _bucket_set_keys(ctx, bucket)
        checks.append((bucket, list(zip(_SETS, set_keys, sizes, stats[3:], strict=True))))
        total, issued, claimed, expired, revoked = sizes
        claimed_ever, claim_ms_sum, claim_n = (_number(v) for v in stats[:3])
        parts.append(
            CertificateFigures(
                total=total,
                issued=issued,
                claimed=claimed,
                expired=expired,
                revoked=revoked,
                overdue_issued=int(overdue_i),
                overdue_claimed=int(overdue_c),
                soon_issued=int(soon_i),
                soon_claimed=int(soon_c),
                claimed_ever=claimed_ever,
                claim_ms_sum=claim_ms_sum,
                claim_n=claim_n,
            )
        )
    if unmarked:
        yield from _require_bucket_markers(ctx, unmarked)
    for bucket, bucket_checks in checks:
        # Yields only where a bucket's sizes differ (one atomic call confirms it): the common
        # path costs no round trip.
        yield from ensure_fresh(
            f"the certifications (bucket {bucket})",
            ctx.keys.credential_stats(bucket),
            bucket_checks,
        )
    return sum_figures(parts)


def _require_bucket_markers(ctx: Context, buckets: Sequence[str]) -> Op[None]:
    """Buckets that hold certificates but showed no marker: asked again (one batch), since a
    first write of this library may have landed between the marker's read and the set's, and
    it sets both at once. Still unmarked: NotIndexedError, as on one server."""
    marked = yield batch(*(cmd("EXISTS", ctx.keys.index_marker(b)) for b in buckets))
    if not all(marked):
        raise NotIndexedError(NOT_INDEXED_MESSAGE)


def issue_training_certification(
    ctx: Context,
    certification: TrainingCertificationRecord | dict[str, Any],
    *,
    at: datetime | str | None = None,
) -> Op[bool]:
    """Store a certification; issuing the same record again is a no-op (False), also after the
    certificate moved on by legal status changes (docs/architecture.md, "Replays of
    certificate events"); the same id with other data is CertificationExistsError."""
    record: TrainingCertificationRecord = coerce(
        TrainingCertificationRecord, certification, "certification"
    )
    events = EventBatch(ctx)
    events.certification_issued(record, at)
    return (yield from apply_one(events))


def update_certification_status(
    ctx: Context,
    cert_id: str,
    new_status: str,
    *,
    claimed_at: datetime | str | None = None,
    at: datetime | str | None = None,
) -> Op[bool]:
    """Move a certification to ``new_status``; ``claimed_at`` (default: now) for claims.

    Returns False when it already had that status, or for a claim at exactly the stored claim
    time of a certification since expired or revoked (a replay of that claim).
    """
    events = EventBatch(ctx)
    events.certification_status(cert_id, new_status, claimed_at, at)
    return (yield from apply_one(events))


def change_certification_status(
    ctx: Context,
    cert_id: str,
    new_status: str,
    *,
    claimed_at: datetime | str | None = None,
    at: datetime | str | None = None,
) -> Op[TrainingCertificationRecord]:
    """``update_certification_status``, then the record as it is now (one more round trip)."""
    yield from update_certification_status(ctx, cert_id, new_status, claimed_at=claimed_at, at=at)
    record = yield from get_training_certification(ctx, cert_id)
    if record is None:  # deleted by someone else in between
        raise CertificationNotFoundError(f"no certification {cert_id}")
    return record
