"""What learners do: events in bulk (ingest) and a learner's progress (viewer reads, ingest
writes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter

from ...types import EnhancedTrainingProgress, EventOutcomes, TrainingEvent
from ..auth import Ingest, Viewer
from ..events import read_events
from ..problems import ApiError, responses
from ..state import analytics_of, metrics_of, settings_of
from . import API_PREFIX, CourseId, UserId

router = APIRouter(prefix=API_PREFIX, responses=responses(401, 403, 503))


_EVENT_SCHEMA = TypeAdapter[Any](TrainingEvent).json_schema(
    ref_template="#/components/schemas/{model}"
)
EVENT_DEFINITIONS: dict[str, Any] = {
    **_EVENT_SCHEMA.pop("$defs", {}),
    "TrainingEvent": _EVENT_SCHEMA,
}
_EVENT_REF = {"$ref": "#/components/schemas/TrainingEvent"}


@router.post(
    "/events",
    tags=["events"],
    dependencies=[Ingest],
    response_model=EventOutcomes,
    responses=responses(400, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One event, an array of events, or JSON lines (one event a line). "
            "Events are the camelCase form of the `record_many` event models, `kind` included.",
            "content": {
                "application/json": {
                    "schema": {"oneOf": [_EVENT_REF, {"type": "array", "items": _EVENT_REF}]}
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def post_events(request: Request) -> Response:
    """Apply events in order; one result per event (applied, unchanged, or rejected with the
    error's name and message) and the totals. Bad events do not stop the good ones."""
    settings = settings_of(request)
    events = await read_events(request, settings)
    report = await analytics_of(request).record_each_report(events, batch_size=settings.batch_size)
    counted = metrics_of(request).events
    for name, count in (
        ("applied", report.applied),
        ("unchanged", report.unchanged),
        ("rejected", report.rejected),
    ):
        if count:
            counted.labels(name).inc(count)
    # The core's JSON as is: FastAPI would validate a thousand results again first.
    return Response(report.json, media_type="application/json")


class ProgressUpdate(EnhancedTrainingProgress):
    """A learner's progress; ``userId`` and ``courseId`` come from the path (if given in the
    body too, they must match it)."""

    user_id: str | None = None  # type: ignore[assignment]
    course_id: str | None = None  # type: ignore[assignment]


@router.get(
    "/progress/{userId}/{courseId}",
    tags=["progress"],
    dependencies=[Viewer],
    responses=responses(404),
)
async def get_progress(
    request: Request, user_id: UserId, course_id: CourseId
) -> EnhancedTrainingProgress:
    """A learner's saved progress in a course (404 when none was saved)."""
    progress = await analytics_of(request).get_user_course_progress_data(user_id, course_id)
    if progress is None:
        raise ApiError(404, "progress-not-found", "Not found", "no progress saved")
    return progress


@router.put("/progress/{userId}/{courseId}", tags=["progress"], dependencies=[Ingest])
async def put_progress(
    request: Request, user_id: UserId, course_id: CourseId, progress: ProgressUpdate
) -> EnhancedTrainingProgress:
    """Save a learner's progress (every field); returns it as saved."""
    for given, expected, name in (
        (progress.user_id, user_id, "userId"),
        (progress.course_id, course_id, "courseId"),
    ):
        if given is not None and given != expected:
            raise ApiError(422, "path-mismatch", "Invalid input", f"{name} differs from the path")
    saved = EnhancedTrainingProgress.model_validate(
        {**progress.model_dump(), "userId": user_id, "courseId": course_id}
    )
    await analytics_of(request).save_user_course_progress(saved)
    return saved
