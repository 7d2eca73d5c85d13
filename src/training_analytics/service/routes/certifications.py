"""Certifications: viewers read them, ingest issues them and changes their status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response

from ...pages import DEFAULT_CERTIFICATION_PAGE, MAX_EXPIRY_DAYS, MAX_PAGE
from ...types import (
    CertificationPage,
    CertificationStatus,
    CredentialStats,
    SeedModel,
    Timestamp,
    TrainingCertificationRecord,
)
from ..auth import Ingest, Viewer
from ..problems import ApiError, responses
from ..state import analytics_of
from . import API_PREFIX, ID_PATTERN, CertId

router = APIRouter(prefix=API_PREFIX, tags=["certifications"], responses=responses(401, 403, 503))

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


@router.post(
    "/certifications",
    dependencies=[Ingest],
    status_code=201,
    responses={
        200: {"description": "The same record was issued before (nothing changed)"},
        **responses(409),
    },
)
async def issue(
    request: Request, response: Response, record: TrainingCertificationRecord
) -> TrainingCertificationRecord:
    """Issue a certification (201); the same record again is a no-op (200); a different record
    under the same id is a conflict (409)."""
    created = await analytics_of(request).issue_training_certification(record)
    if not created:
        response.status_code = 200
    response.headers["Location"] = str(request.url_for("get_certification", certId=record.id))
    return record


@router.get("/certifications", dependencies=[Viewer])
async def list_certifications(
    request: Request,
    status: CertificationStatus | None = None,
    course_id: Annotated[str | None, Query(alias="courseId", pattern=ID_PATTERN)] = None,
    limit: Limit = DEFAULT_CERTIFICATION_PAGE,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> CertificationPage:
    """Certifications a page at a time (never the whole set): pass ``nextCursor`` back as
    ``cursor``; it is null after the last page. A page filtered by course may be short."""
    return await analytics_of(request).list_certifications(
        status=status, course_id=course_id, limit=limit, cursor=cursor
    )


@router.get("/certifications/stats", dependencies=[Viewer])
async def stats(request: Request) -> CredentialStats:
    """Certificates by effective status (past their expiry count as expired)."""
    return await analytics_of(request).get_credential_stats()


@router.get("/certifications/expiring", dependencies=[Viewer])
async def expiring(
    request: Request,
    days: Annotated[int, Query(ge=1, le=MAX_EXPIRY_DAYS)] = 30,
    limit: Limit = DEFAULT_CERTIFICATION_PAGE,
) -> list[TrainingCertificationRecord]:
    """Issued or claimed certificates expiring within ``days``, soonest first."""
    return await analytics_of(request).get_expiring_certifications(days=days, limit=limit)


@router.get("/certifications/{certId}", dependencies=[Viewer], responses=responses(404))
async def get_certification(request: Request, cert_id: CertId) -> TrainingCertificationRecord:
    record = await analytics_of(request).get_training_certification(cert_id)
    if record is None:
        raise ApiError(
            404, "CertificationNotFoundError", "Not found", f"no certification {cert_id}"
        )
    return record


class Claim(SeedModel):
    claimed_at: Timestamp | None = None
    """When it was claimed (ISO-8601); default: now."""


@router.post("/certifications/{certId}/claim", dependencies=[Ingest], responses=responses(404, 409))
async def claim(
    request: Request, cert_id: CertId, body: Annotated[Claim | None, Body()] = None
) -> TrainingCertificationRecord:
    """Mark it claimed (at ``claimedAt``, default now); 409 if the lifecycle forbids it."""
    claimed_at = body.claimed_at if body is not None else None
    return await analytics_of(request).change_certification_status(
        cert_id, "claimed", claimed_at=claimed_at
    )


@router.post(
    "/certifications/{certId}/expire", dependencies=[Ingest], responses=responses(404, 409)
)
async def expire(request: Request, cert_id: CertId) -> TrainingCertificationRecord:
    return await analytics_of(request).change_certification_status(cert_id, "expired")


@router.post(
    "/certifications/{certId}/revoke", dependencies=[Ingest], responses=responses(404, 409)
)
async def revoke(request: Request, cert_id: CertId) -> TrainingCertificationRecord:
    return await analytics_of(request).change_certification_status(cert_id, "revoked")
