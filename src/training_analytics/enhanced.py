"""Legacy -> enhanced course format (the seed's enhanced.ts)."""

from __future__ import annotations

import math

from ._context import Context
from ._protocol import Op
from .catalog import get_all_training_courses
from .helpers import get_localized_name
from .types import (
    CertificationInfo,
    CourseModule,
    EnhancedCourseModule,
    EnhancedModuleQuestion,
    EnhancedTrainingCourse,
    TrainingCourse,
)

DEFAULT_MODULE_MINUTES = 30


def _module_type(module: CourseModule) -> str:
    if module.lessons:
        first = module.lessons[0].type
        return first if first in ("video", "download") else "reading"
    return "quiz" if module.quiz else "reading"


def enhance_module(module: CourseModule, course: TrainingCourse) -> EnhancedCourseModule:
    video_url = None
    content = None
    if module.lessons:
        first = module.lessons[0]
        video_url = first.video_url
        if first.content:
            text = first.content if isinstance(first.content, str) else first.content.get("en", "")
            content = {"en": text}
    questions = (
        [
            EnhancedModuleQuestion(
                id=q.id, question=q.question, options=q.options, correct_answer=q.correct_answer
            )
            for q in module.quiz
        ]
        if module.quiz is not None
        else None
    )
    return EnhancedCourseModule(
        id=module.id,
        title=module.title,
        type=_module_type(module),  # type: ignore[arg-type]
        duration=module.duration or DEFAULT_MODULE_MINUTES,
        order=module.order,
        video_url=video_url,
        content=content,
        questions=questions,
        # The seed's `m.passingScore || course.passingScore`: 0 falls back too.
        passing_score=module.passing_score or course.passing_score,
    )


def enhance_course(course: TrainingCourse) -> EnhancedTrainingCourse:
    return EnhancedTrainingCourse(
        id=course.id,
        title=course.title,
        description=course.description,
        category=course.category,
        level=course.level,
        estimated_hours=math.ceil(course.duration / 60),
        modules=[enhance_module(m, course) for m in course.modules],
        has_certification=course.certificate_enabled,
        certification=(
            CertificationInfo(credential_name=get_localized_name(course.title))
            if course.certificate_enabled
            else None
        ),
        passing_score=course.passing_score,
        status="published" if course.is_published else "draft",
        created_at=course.created_at,
        updated_at=course.updated_at,
        created_by=course.created_by,
    )


def get_all_enhanced_courses(ctx: Context) -> Op[list[EnhancedTrainingCourse]]:
    courses = yield from get_all_training_courses(ctx)
    return [enhance_course(c) for c in courses]


def get_enhanced_courses_by_status(ctx: Context, status: str) -> Op[list[EnhancedTrainingCourse]]:
    """Enhanced courses whose status (draft / published) is ``status``."""
    courses = yield from get_all_enhanced_courses(ctx)
    return [c for c in courses if c.status == status]
