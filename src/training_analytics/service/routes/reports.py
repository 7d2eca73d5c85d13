"""Read-only analytics (viewer): overview, course analytics, daily series, credentials."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from ...pages import DEFAULT_COURSE_PAGE, MAX_PAGE
from ...types import (
    CourseAnalyticsPage,
    CourseDetailedAnalytics,
    CredentialClaimAnalytics,
    SeriesReport,
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
