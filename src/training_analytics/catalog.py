"""The course catalog the analytics depend on (the seed's training-course operations).

Courses live in ``training:course:{id}`` hashes with three indexes: all courses ordered by
``order``, the published set, and a set per category. Each write changes the hash and its
indexes in one script; an update re-reads and retries if the course's category changed between
its read and its write.
"""

from __future__ import annotations

from typing import Any

from ._codec import check_course, coerce, course_from_hash, course_to_fields
from ._context import Context
from ._protocol import Op, ScriptCall, batch, cmd, load_script, pipeline, single
from ._time import to_iso
from .errors import (
    ConcurrentUpdateError,
    CourseExistsError,
    CourseNotFoundError,
    InvalidInputError,
)
from .keys import CATALOG_TAG
from .types import TrainingCourse

CATALOG = load_script("catalog.lua")
_MAX_ATTEMPTS = 5


def get_training_course(ctx: Context, course_id: str) -> Op[TrainingCourse | None]:
    data = yield from single("HGETALL", ctx.keys.training_course(course_id))
    return course_from_hash(data)


def _load_courses(ctx: Context, ids: list[str]) -> Op[list[TrainingCourse]]:
    replies = yield from pipeline([cmd("HGETALL", ctx.keys.training_course(i)) for i in ids])
    courses = [c for c in (course_from_hash(r) for r in replies) if c is not None]
    return sorted(courses, key=lambda c: c.order)


def get_all_training_courses(ctx: Context) -> Op[list[TrainingCourse]]:
    """Every course, by ``order``."""
    ids = yield from single("ZRANGE", ctx.keys.all_training_courses(), 0, -1)
    return (yield from _load_courses(ctx, list(ids)))


def get_published_training_courses(ctx: Context) -> Op[list[TrainingCourse]]:
    ids = yield from single("SMEMBERS", ctx.keys.published_training_courses())
    return (yield from _load_courses(ctx, sorted(ids)))


def get_training_courses_by_category(ctx: Context, category: str) -> Op[list[TrainingCourse]]:
    ids = yield from single("SMEMBERS", ctx.keys.training_courses_by_category(category))
    return (yield from _load_courses(ctx, sorted(ids)))


def _save_call(
    ctx: Context, mode: str, course: TrainingCourse, seen_category: str, fields: dict[str, str]
) -> ScriptCall:
    k = ctx.keys
    pairs: list[str] = []
    for name, value in fields.items():
        pairs += [name, value]
    keys: tuple[str, ...] = (
        k.training_course(course.id),
        k.all_training_courses(),
        k.published_training_courses(),
        k.training_courses_by_category(seen_category or course.category),
        k.training_courses_by_category(course.category),
    )
    if k.cluster:  # no caches there; the catalog's own version (one slot: {:catalog})
        keys = (*keys, k.store_version(CATALOG_TAG))
    else:
        keys = (
            *keys,
            k.overview_metrics_cache(),
            k.course_analytics_cache(course.id),
            k.store_version(),
        )
    return ScriptCall(
        CATALOG,
        keys,
        (
            mode,
            course.id,
            seen_category,
            course.order,
            "true" if course.is_published else "false",
            *pairs,
        ),
    )


def create_training_course(
    ctx: Context, course: TrainingCourse | dict[str, Any]
) -> Op[TrainingCourse]:
    """Store a new course and return it as stored; CourseExistsError if the id is taken."""
    if isinstance(course, dict):
        _aliased({k: v for k, v in course.items() if k not in ("id",)})  # unknown names refused
    model: TrainingCourse = check_course(coerce(TrainingCourse, course, "course"))
    if not model.created_at or not model.updated_at:
        now = to_iso(ctx.now())
        model = model.model_copy(
            update={"created_at": model.created_at or now, "updated_at": model.updated_at or now}
        )
    yield batch(_save_call(ctx, "create", model, "", course_to_fields(model)))
    return model


def update_training_course(
    ctx: Context, course_id: str, updates: dict[str, Any]
) -> Op[TrainingCourse]:
    """Change some fields of a course (camelCase or snake_case names); ``updatedAt`` is set.

    Returns the course as stored now."""
    for _ in range(_MAX_ATTEMPTS):
        current = yield from get_training_course(ctx, course_id)
        if current is None:
            raise CourseNotFoundError(f"no course {course_id}")
        aliased = _aliased(updates)
        merged = {**current.model_dump(by_alias=True), **aliased, "id": course_id}
        merged["updatedAt"] = to_iso(ctx.now())
        model: TrainingCourse = check_course(
            coerce(TrainingCourse, merged, "course update"), stamped=set(aliased) | {"updatedAt"}
        )
        fields = course_to_fields(model, only=set(aliased) | {"updatedAt"})
        try:
            yield batch(_save_call(ctx, "update", model, current.category, fields))
        except ConcurrentUpdateError:
            continue
        return model
    raise ConcurrentUpdateError(f"course {course_id} kept changing; update not applied")


def put_training_course(ctx: Context, course: TrainingCourse | dict[str, Any]) -> Op[bool]:
    """Create the course, or replace the stored one with exactly this record (its timestamps
    included, as an import restores them); False when the stored course already is this record.
    """
    model: TrainingCourse = check_course(coerce(TrainingCourse, course, "course"))
    for _ in range(_MAX_ATTEMPTS):
        current = yield from get_training_course(ctx, model.id)
        if current is None:
            try:
                yield from create_training_course(ctx, model)
            except CourseExistsError:
                continue  # created meanwhile: replace it
            return True
        fields, stored = course_to_fields(model), course_to_fields(current)
        # Timestamps the record leaves out are not a difference: they keep or get their value.
        missing = {name for name in ("createdAt", "updatedAt") if not fields[name]}
        if all(value == stored.get(name) for name, value in fields.items() if name not in missing):
            return False
        if missing:
            model = model.model_copy(
                update={
                    "created_at": model.created_at or current.created_at,
                    "updated_at": model.updated_at or to_iso(ctx.now()),
                }
            )
            fields = course_to_fields(model)
        try:
            yield batch(_save_call(ctx, "update", model, current.category, fields))
        except (ConcurrentUpdateError, CourseNotFoundError):
            continue  # changed or deleted between the read and the write: read again
        return True
    raise ConcurrentUpdateError(f"course {model.id} kept changing; not replaced")


def _aliased(updates: dict[str, Any]) -> dict[str, Any]:
    """Updates keyed by the stored (camelCase) field names; unknown or read-only names refused
    (create refuses unknown names the same way)."""
    if not isinstance(updates, dict):
        raise InvalidInputError(f"course fields must be a dict, got {type(updates).__name__}")
    aliases = {n: f.alias or n for n, f in TrainingCourse.model_fields.items()}
    stored = set(aliases.values())
    result: dict[str, Any] = {}
    for key, value in updates.items():
        alias = aliases.get(key, key)
        if alias not in stored or alias == "id":
            raise InvalidInputError(f"unknown or read-only course field {key!r}")
        result[alias] = value
    return result


def delete_training_course(ctx: Context, course_id: str) -> Op[None]:
    """Remove a course and its index entries (learner data stays); CourseNotFoundError if absent."""
    for _ in range(_MAX_ATTEMPTS):
        current = yield from get_training_course(ctx, course_id)
        if current is None:
            raise CourseNotFoundError(f"no course {course_id}")
        try:
            yield batch(_save_call(ctx, "delete", current, current.category, {}))
        except ConcurrentUpdateError:
            continue
        return
    raise ConcurrentUpdateError(f"course {course_id} kept changing; delete not applied")


def publish_training_course(ctx: Context, course_id: str) -> Op[TrainingCourse]:
    return (yield from update_training_course(ctx, course_id, {"isPublished": True}))


def unpublish_training_course(ctx: Context, course_id: str) -> Op[TrainingCourse]:
    return (yield from update_training_course(ctx, course_id, {"isPublished": False}))


def find_training_courses(
    ctx: Context, *, status: str | None = None, category: str | None = None
) -> Op[list[TrainingCourse]]:
    """Courses by ``order``, optionally only ``published`` / ``draft`` ones of a category."""
    if status not in (None, "published", "draft"):
        raise InvalidInputError(f"unknown course status {status!r}; use published or draft")
    k = ctx.keys
    ids, published, in_category = yield batch(
        cmd("ZRANGE", k.all_training_courses(), 0, -1),
        cmd("SMEMBERS", k.published_training_courses()),
        cmd("SMEMBERS", k.training_courses_by_category(category or "-")),
    )
    chosen = [
        i
        for i in ids
        if (status is None or (i in published) == (status == "published"))
        and (category is None or i in in_category)
    ]
    return (yield from _load_courses(ctx, chosen))
