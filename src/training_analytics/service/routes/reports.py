"""Read-only analytics (viewer): overview, course analytics, daily series, credentials."""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from ... import analytics, courses, credentials, pages
from ... import series as daily
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
from ..answers import answer_as, answers_of
from ..auth import BearerKey, admitted, read_as
from ..problems import responses
from ..replies import json_reply
from ..state import analytics_of
from . import API_PREFIX, ID_PATTERN, CourseId

# Every route here is a read for the viewer role, whose key is verified by the route rather than
# by a dependency of its own: the analytics with the store's stamp, by the worker's key gate
# (``answer_as``: kept answers while the store is unchanged), the listings in the read's first
# round trip (``read_as``).
router = APIRouter(prefix=API_PREFIX, responses=responses(401, 403, 503))


@router.get("/overview", tags=["analytics"], response_model=TrainingOverviewMetrics)
async def overview(request: Request, key: BearerKey) -> Response:
    """Training overview metrics."""
    read = courses.get_training_overview_metrics
    return await answer_as(request, key, "viewer", ("overview",), read)


@router.get(
    "/courses/{courseId}/analytics",
    tags=["analytics"],
    response_model=CourseDetailedAnalytics,
    responses=responses(404),
)
async def course_analytics(request: Request, course_id: CourseId, key: BearerKey) -> Response:
    """A course's enrolments, completions, scores, time to complete and drop-off per module;
    404 for a course neither in the catalog nor with any event."""
    read = partial(courses.get_course_detailed_analytics, course_id=course_id)
    return await answer_as(request, key, "viewer", ("course", course_id), read)


@router.get("/analytics/courses", tags=["analytics"], response_model=CourseAnalyticsPage)
async def course_analytics_page(
    request: Request,
    key: BearerKey,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_COURSE_PAGE,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """Each course (id, title, status) with its analytics, in catalog order, a page at a time:
    pass ``nextCursor`` back as ``cursor``."""
    read = partial(pages.list_course_analytics, limit=limit, cursor=cursor)
    return json_reply(await read_as(request, key, "viewer", read))


@router.get("/series/{kind}", tags=["analytics"], response_model=SeriesReport)
async def series(
    request: Request,
    kind: Literal["enrollments", "completions"],
    key: BearerKey,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    course_id: Annotated[str | None, Query(alias="courseId", pattern=ID_PATTERN)] = None,
) -> Response:
    """Daily counts from ``from`` to ``to`` (default: the 30 days ending today) with their
    total, mean per day and peak."""
    read = partial(
        daily.get_series_report, kind=kind, start_date=start, end_date=end, course_id=course_id
    )
    return await answer_as(request, key, "viewer", ("series", kind, start, end, course_id), read)


@router.get("/credentials/analytics", tags=["analytics"], response_model=CredentialClaimAnalytics)
async def credential_analytics(request: Request, key: BearerKey) -> Response:
    """Certificates issued and claimed, claim rate and time, pending, expiring in 30 days."""
    read = credentials.get_credential_claim_analytics
    return await answer_as(request, key, "viewer", ("credentials",), read)


@router.get("/courses/{courseId}/funnel", tags=["analytics"], response_model=list[ModuleFunnelStep])
async def course_funnel(
    request: Request, course_id: CourseId, key: BearerKey
) -> list[ModuleFunnelStep]:
    """Each module in course order: learners who started and completed it, its drop-off, and
    the drop-off to the next module ([] for a course without modules or not in the catalog)."""
    read = partial(analytics.get_course_module_funnel, course_id=course_id)
    return await read_as(request, key, "viewer", read)


@router.get(
    "/version",
    tags=["analytics"],
    response_model=StoreVersion,
    responses={304: {"description": "Unchanged since the version the `If-None-Match` names"}},
)
async def store_version(
    request: Request,
    key: BearerKey,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The store version, raised by every write that changes training data (in the same
    atomic call). Poll it with `If-None-Match: <the ETag>`: 304 while nothing changed, so a
    client refetches analytics only when they moved."""
    info, stamp = await answers_of(request).gate.check(key)
    admitted(request, info, "viewer")
    if stamp is not None:
        current = StoreVersion(version=stamp.version)
    else:  # the version key holds something else than a counter: StoreError says which
        current = await analytics_of(request).get_store_version()
    etag = f'"{current.version}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if if_none_match is not None and etag in (tag.strip() for tag in if_none_match.split(",")):
        return Response(status_code=304, headers=headers)
    reply = json_reply(current)
    reply.headers.update(headers)
    return reply
