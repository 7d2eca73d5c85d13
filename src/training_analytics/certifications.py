"""Certifications (the seed's certifications.ts) with a lifecycle the server enforces.

issued -> claimed | expired | revoked; claimed -> expired | revoked; expired -> revoked.
Anything else raises IllegalTransitionError, an unknown id CertificationNotFoundError, a claim
at or after the expiry CertificationExpiredError; in each case nothing changes. A certificate
whose ``expiresAt`` has passed counts as expired in the figures even before anyone marks it so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._codec import certification_from_hash, coerce
from ._context import Context
from ._index import ensure_fresh, require_index
from ._protocol import Command, Op, batch, cmd, pipeline, single
from ._time import epoch_ms
from ._writes import EventBatch, apply_one
from .errors import CertificationNotFoundError
from .keys import CERTIFICATION_STATUSES
from .types import CredentialStats, TrainingCertificationRecord

_SETS = ("all", *CERTIFICATION_STATUSES)


def get_all_training_certifications(ctx: Context) -> Op[list[TrainingCertificationRecord]]:
    """Every certification record (a listing: it reads each one)."""
    k = ctx.keys
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


def issue_training_certification(
    ctx: Context,
    certification: TrainingCertificationRecord | dict[str, Any],
    *,
    at: datetime | str | None = None,
) -> Op[bool]:
    """Store a certification; issuing the same record again is a no-op (False)."""
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

    Returns False when it already had that status.
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
