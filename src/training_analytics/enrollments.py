"""Enrolments, completions, module progress and learner progress (the seed's enrollments.ts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._codec import coerce, progress_from_hash
from ._context import Context
from ._protocol import Op, single
from ._writes import EventBatch, apply_one
from .types import EnhancedTrainingProgress


def get_course_enrollments(ctx: Context, course_id: str) -> Op[list[str]]:
    """Ids of the learners enrolled in a course (sorted; the set itself has no order)."""
    members = yield from single("SMEMBERS", ctx.keys.course_enrollments(course_id))
    return sorted(members)


def get_course_enrollment_count(ctx: Context, course_id: str) -> Op[int]:
    count = yield from single("SCARD", ctx.keys.course_enrollments(course_id))
    return int(count)


def get_course_completions(ctx: Context, course_id: str) -> Op[list[str]]:
    members = yield from single("SMEMBERS", ctx.keys.course_completions(course_id))
    return sorted(members)


def get_course_completion_count(ctx: Context, course_id: str) -> Op[int]:
    count = yield from single("SCARD", ctx.keys.course_completions(course_id))
    return int(count)


def get_user_course_progress_data(
    ctx: Context, user_id: str, course_id: str
) -> Op[EnhancedTrainingProgress | None]:
    """A learner's saved progress in a course, or None when nothing was saved."""
    data = yield from single("HGETALL", ctx.keys.user_course_progress(user_id, course_id))
    return progress_from_hash(user_id, course_id, data)


def record_enrollment(
    ctx: Context, user_id: str, course_id: str, *, at: datetime | str | None = None
) -> Op[bool]:
    """Enrol a learner; True if new, False if already enrolled (counted once either way)."""
    events = EventBatch(ctx)
    events.enrollment(user_id, course_id, at)
    return (yield from apply_one(events))


def record_completion(
    ctx: Context, user_id: str, course_id: str, *, at: datetime | str | None = None
) -> Op[bool]:
    """Record a course completion, enrolling the learner first (at the same time) if needed."""
    events = EventBatch(ctx)
    events.completion(user_id, course_id, at)
    return (yield from apply_one(events))


def record_module_start(ctx: Context, user_id: str, course_id: str, module_id: str) -> Op[bool]:
    events = EventBatch(ctx)
    events.module_start(user_id, course_id, module_id)
    return (yield from apply_one(events))


def record_module_completion(
    ctx: Context, user_id: str, course_id: str, module_id: str
) -> Op[bool]:
    """Record a module completion; it also counts as a start of the module."""
    events = EventBatch(ctx)
    events.module_completion(user_id, course_id, module_id)
    return (yield from apply_one(events))


def save_user_course_progress(
    ctx: Context, progress: EnhancedTrainingProgress | dict[str, Any]
) -> Op[bool]:
    """Save a learner's progress (all fields); course score and time averages follow at once.
    True if the store changed; False when the learner's hash already holds every value (a
    replay: nothing written, the store version unchanged)."""
    model: EnhancedTrainingProgress = coerce(EnhancedTrainingProgress, progress, "progress")
    events = EventBatch(ctx)
    events.progress(model)
    return (yield from apply_one(events))
