"""Credential claim analytics (the seed's credentials.ts), from counters and an expiry index."""

from __future__ import annotations

from ._context import Context
from ._index import require_index
from ._protocol import Op, batch, cmd
from ._time import epoch_ms
from .certifications import (
    EXPIRY_WINDOW,
    RECORDED_SIZES,
    CertificateFigures,
    bucket_figures,
    checked_status_sizes,
    overdue_counts,
    status_sizes,
)
from .helpers import calculate_percentage, round_to
from .types import CredentialClaimAnalytics

_MS_PER_HOUR = 3_600_000


def get_credential_claim_analytics(ctx: Context) -> Op[CredentialClaimAnalytics]:
    """Issued, claimed (ever), claim rate, mean hours to claim, pending, expiring in 30 days.

    One round trip (one HMGET, four ZCOUNTs, one call counting the certificate sets), whatever
    the number of certificates; the set sizes are checked against those this library recorded.
    On a cluster: the same reads per certificate bucket in one batch (one pipeline per node),
    summed.
    """
    k = ctx.keys
    now = ctx.now()
    if k.cluster:
        return claim_analytics_from_figures((yield from bucket_figures(ctx, now)))
    low, high = epoch_ms(now), epoch_ms(now + EXPIRY_WINDOW)
    replies = yield batch(
        cmd("EXISTS", k.index_marker()),
        cmd("HMGET", k.credential_stats(), "claimed", "claim_ms_sum", "claim_n", *RECORDED_SIZES),
        *overdue_counts(ctx, now),
        cmd("ZCOUNT", k.certification_expiry("issued"), f"({low}", high),
        cmd("ZCOUNT", k.certification_expiry("claimed"), f"({low}", high),
        *status_sizes(ctx),
    )
    indexed, stats, overdue_issued, _, soon_issued, soon_claimed, *sizes = replies
    if not indexed:
        yield from require_index(ctx)
    total, issued, *_ = yield from checked_status_sizes(ctx, sizes, stats[3:])
    claimed, claim_ms, claim_n = (int(v) if v else 0 for v in stats[:3])
    return CredentialClaimAnalytics(
        total_issued=int(total),
        total_claimed=claimed,
        claim_rate=calculate_percentage(claimed, int(total)),
        average_claim_time_hours=round_to(claim_ms / claim_n / _MS_PER_HOUR, 1) if claim_n else 0,
        pending=int(issued) - int(overdue_issued),
        expiring_in_30_days=int(soon_issued) + int(soon_claimed),
    )


def claim_analytics_from_figures(f: CertificateFigures) -> CredentialClaimAnalytics:
    """Credential analytics from (summed) certificate figures, as the single server computes
    them from its one set of keys."""
    return CredentialClaimAnalytics(
        total_issued=f.total,
        total_claimed=f.claimed_ever,
        claim_rate=calculate_percentage(f.claimed_ever, f.total),
        average_claim_time_hours=(
            round_to(f.claim_ms_sum / f.claim_n / _MS_PER_HOUR, 1) if f.claim_n else 0
        ),
        pending=f.issued - f.overdue_issued,
        expiring_in_30_days=f.soon_issued + f.soon_claimed,
    )
