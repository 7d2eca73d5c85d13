"""Read-only analytics (viewer): overview, course analytics, daily series, credentials."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from ...pages import DEFAULT_COURSE_PAGE, MAX_PAGE
from ...types import (
    CourseAnalyticsPage,
    CourseDetailedAnalytics,
    CredentialClaimAnalytics,
    ModuleFunnelStep,
    SeriesReport,
    StoreVersion,
    TrainingOverviewMetrics,
)
from ..auth import Viewer
from ..problems import responses
from ..state import analytics_of
from . import API_PREFIX, ID_PATTERN, CourseId

router = APIRouter(prefix=API_PREFIX, dependencies=[Viewer], responses=responses(401, 403, 503))


@router.get("/overview", tags=["analytics"])
async def overview(request: Request) -> TrainingOverviewMetrics:
    """Training overview metrics."""
    return await analytics_of(request).get_training_overview_metrics()


@router.get("/courses/{courseId}/analytics", tags=["analytics"], responses=responses(404))
async def course_analytics(request: Request, course_id: CourseId) -> CourseDetailedAnalytics:
    """A course's enrolments, completions, scores, time to complete and drop-off per module;
    404 for a course neither in the catalog nor with any event."""
    return await analytics_of(request).get_course_detailed_analytics(course_id)


@router.get("/analytics/courses", tags=["analytics"])
async def course_analytics_page(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_COURSE_PAGE,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> CourseAnalyticsPage:
    """Each course (id, title, status) with its analytics, in catalog order, a page at a time:
    pass ``nextCursor`` back as ``cursor``."""
    return await analytics_of(request).list_course_analytics(limit=limit, cursor=cursor)


@router.get("/series/{kind}", tags=["analytics"])
async def series(
    request: Request,
    kind: Literal["enrollments", "completions"],
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    course_id: Annotated[str | None, Query(alias="courseId", pattern=ID_PATTERN)] = None,
) -> SeriesReport:
    """Daily counts from ``from`` to ``to`` (default: the 30 days ending today) with their
    total, mean per day and peak."""
    return await analytics_of(request).get_series_report(kind, start, end, course_id)


@router.get("/credentials/analytics", tags=["analytics"])
async def credential_analytics(request: Request) -> CredentialClaimAnalytics:
    """Certificates issued and claimed, claim rate and time, pending, expiring in 30 days."""
    return await analytics_of(request).get_credential_claim_analytics()


@router.get("/courses/{courseId}/funnel", tags=["analytics"])
async def course_funnel(request: Request, course_id: CourseId) -> list[ModuleFunnelStep]:
    """Each module in course order: learners who started and completed it, its drop-off, and
    the drop-off to the next module ([] for a course without modules or not in the catalog)."""
    return await analytics_of(request).get_course_module_funnel(course_id)


@router.get(
    "/version",
    tags=["analytics"],
    response_model=StoreVersion,
    responses={304: {"description": "Unchanged since the version the `If-None-Match` names"}},
)
async def store_version(
    request: Request,
    response: Response,
    if_none_match: Annotated[str | None, Header()] = None,
) -> StoreVersion | Response:
    """The store version, raised by every write that changes training data (in the same
    atomic call). Poll it with `If-None-Match: <the ETag>`: 304 while nothing changed, so a
    client refetches analytics only when they moved."""
    current = await analytics_of(request).get_store_version()
    etag = f'"{current.version}"'
    if if_none_match is not None and etag in (tag.strip() for tag in if_none_match.split(",")):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "no-cache"
    return current
