"""Module drop-off (the seed's analytics.ts): who started a module but did not complete it."""

from __future__ import annotations

from collections.abc import Sequence

from ._context import Context
from ._protocol import Op, batch, cardinalities, cmd
from .catalog import get_training_course
from .helpers import calculate_percentage, get_localized_name
from .types import CourseModule, ModuleDropoffRate, ModuleFunnelStep


def get_module_dropoff_rate(ctx: Context, course_id: str, module_id: str) -> Op[float]:
    """Percent of learners who started the module and have not completed it (0 if none started)."""
    k = ctx.keys
    started, completed = yield batch(
        cmd("SCARD", k.module_enrollments(course_id, module_id)),
        cmd("SCARD", k.module_completions(course_id, module_id)),
    )
    return _dropoff(int(started), int(completed))


def _dropoff(started: int, completed: int) -> float:
    # Completions imply starts here, but sets the older system wrote may not keep that rule.
    return calculate_percentage(max(started - completed, 0), started) if started > 0 else 0


def module_dropoffs(
    ctx: Context, course_id: str, modules: Sequence[CourseModule]
) -> Op[list[ModuleDropoffRate]]:
    """Drop-off of each module, in course order: two SCARDs per module, one script call."""
    k = ctx.keys
    keys = []
    for module in modules:
        keys.append(k.module_enrollments(course_id, module.id))
        keys.append(k.module_completions(course_id, module.id))
    replies = yield from cardinalities(keys)
    return [
        ModuleDropoffRate(
            module_id=module.id,
            module_name=get_localized_name(module.title, f"Module {i + 1}"),
            dropoff_rate=_dropoff(replies[2 * i], replies[2 * i + 1]),
        )
        for i, module in enumerate(modules)
    ]


def get_course_module_dropoff_rates(ctx: Context, course_id: str) -> Op[list[ModuleDropoffRate]]:
    """Drop-off of every module of a course ([] for an unknown course or one without modules)."""
    course = yield from get_training_course(ctx, course_id)
    if course is None or not course.modules:
        return []
    return (yield from module_dropoffs(ctx, course_id, course.modules))


def get_course_module_funnel(ctx: Context, course_id: str) -> Op[list[ModuleFunnelStep]]:
    """Each module in course order with learners who started and completed it, its drop-off and
    the drop-off to the next module; [] for an unknown course or one without modules. The same
    two SCARDs per module as drop-off, in one script call."""
    course = yield from get_training_course(ctx, course_id)
    if course is None or not course.modules:
        return []
    k = ctx.keys
    keys = []
    for module in course.modules:
        keys.append(k.module_enrollments(course_id, module.id))
        keys.append(k.module_completions(course_id, module.id))
    replies = yield from cardinalities(keys)
    count = len(course.modules)
    steps = []
    for i, module in enumerate(course.modules):
        started, completed = replies[2 * i], replies[2 * i + 1]
        to_next = None
        if i + 1 < count:
            next_started = replies[2 * i + 2]
            to_next = (
                calculate_percentage(max(completed - next_started, 0), completed)
                if completed > 0
                else 0
            )
        steps.append(
            ModuleFunnelStep(
                module_id=module.id,
                module_name=get_localized_name(module.title, f"Module {i + 1}"),
                started=started,
                completed=completed,
                dropoff_rate=_dropoff(started, completed),
                dropoff_to_next=to_next,
            )
        )
    return steps
