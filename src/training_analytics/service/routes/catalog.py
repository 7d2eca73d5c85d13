"""The course catalog: viewers read it, admins change it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response

from ...types import TrainingCourse
from ..auth import Admin, Viewer
from ..problems import ApiError, responses
from ..state import analytics_of
from . import API_PREFIX, ID_PATTERN, CourseId

router = APIRouter(prefix=API_PREFIX, tags=["courses"], responses=responses(401, 403, 503))


def not_found(course_id: str) -> ApiError:
    return ApiError(404, "CourseNotFoundError", "Not found", f"no course {course_id}")


@router.get("/courses", dependencies=[Viewer])
async def list_courses(
    request: Request,
    status: Literal["published", "draft"] | None = None,
    category: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
) -> list[TrainingCourse]:
    """The catalog by ``order``, optionally only published or draft courses of a category."""
    return await analytics_of(request).find_training_courses(status=status, category=category)


@router.post(
    "/courses",
    dependencies=[Admin],
    status_code=201,
    responses=responses(409),
    response_description="The course as stored; `Location` names it",
)
async def create_course(
    request: Request, response: Response, course: TrainingCourse
) -> TrainingCourse:
    """Create a course (409 if the id exists)."""
    created = await analytics_of(request).create_training_course(course)
    response.headers["Location"] = str(request.url_for("get_course", courseId=created.id))
    return created


@router.get("/courses/{courseId}", dependencies=[Viewer], responses=responses(404))
async def get_course(request: Request, course_id: CourseId) -> TrainingCourse:
    """One course."""
    course = await analytics_of(request).get_training_course(course_id)
    if course is None:
        raise not_found(course_id)
    return course


@router.patch("/courses/{courseId}", dependencies=[Admin], responses=responses(404, 409))
async def update_course(
    request: Request,
    course_id: CourseId,
    updates: Annotated[
        dict[str, Any],
        Body(description="The fields to change, by their camelCase names (not `id`)."),
    ],
) -> TrainingCourse:
    """Change some fields of a course; returns it as stored."""
    return await analytics_of(request).update_training_course(course_id, updates)


@router.delete(
    "/courses/{courseId}", dependencies=[Admin], status_code=204, responses=responses(404, 409)
)
async def delete_course(request: Request, course_id: CourseId) -> Response:
    """Remove a course from the catalog (learner data stays)."""
    await analytics_of(request).delete_training_course(course_id)
    return Response(status_code=204)


@router.post("/courses/{courseId}/publish", dependencies=[Admin], responses=responses(404, 409))
async def publish_course(request: Request, course_id: CourseId) -> TrainingCourse:
    return await analytics_of(request).publish_training_course(course_id)


@router.post("/courses/{courseId}/unpublish", dependencies=[Admin], responses=responses(404, 409))
async def unpublish_course(request: Request, course_id: CourseId) -> TrainingCourse:
    return await analytics_of(request).unpublish_training_course(course_id)
