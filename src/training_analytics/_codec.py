"""The older system's value formats: models to hash fields and back.

Writes produce exactly what the TypeScript module stored (JSON strings for nested values, ""
for absent optional fields, "true"/"false", numbers as JavaScript prints them); reads accept
what it stored, including fields it left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_json

from ._time import normalize_timestamp, parse_timestamp_ms
from .errors import (
    InvalidDateRangeError,
    InvalidDurationError,
    InvalidInputError,
    InvalidScoreError,
    StoreError,
)
from .helpers import js_round, safe_parse_json, safe_parse_number
from .keys import check_id
from .types import (
    EnhancedTrainingProgress,
    ModuleProgress,
    TrainingCertificationRecord,
    TrainingCourse,
)

PROGRESS_FIELDS = (
    "status",
    "moduleProgress",
    "overallScore",
    "startedAt",
    "completedAt",
    "lastAccessedAt",
    "totalTimeSpentMinutes",
    "certificateId",
    "certificateIssuedAt",
)
PROGRESS_STATUSES = ("not_started", "in_progress", "completed")
COURSE_CATEGORIES = ("sales", "technical", "legal", "product")
COURSE_LEVELS = ("basic", "intermediate", "advanced")


def js_number(value: float) -> str:
    """A number as JavaScript's ``toString`` prints it (``85``, ``85.5``)."""
    if isinstance(value, bool):
        raise InvalidInputError("expected a number, got a boolean")
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _text_map_json(value: Mapping[str, str]) -> str:
    """``_json`` of a map of texts (a localized name), byte for byte, in a tenth of the time:
    ``json.dumps`` builds an encoder per call for these separators. (For floats the two would
    differ: ``1e-07`` against ``1e-7``.)"""
    try:
        return to_json(value).decode()
    except PydanticSerializationError:  # a lone surrogate: refused by check_encodable after
        return _json(value)


def coerce(model: type[Any], value: Any, what: str) -> Any:
    """A model from a model or a dict in the seed's camelCase; InvalidInputError otherwise."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise InvalidInputError(f"invalid {what}: {exc}") from exc


def _check_score(value: float | None, what: str) -> None:
    if value is None:
        return
    # NaN fails the comparison; a boolean is not a score, though Python counts it an int.
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise InvalidScoreError(f"{what} must be between 0 and 100, got {value!r}")


def _check_minutes(value: float | None, what: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidDurationError(f"{what} must be a non-negative number, got {value!r}")
    try:
        finite = math.isfinite(value)  # an int past a float's range raises here
    except OverflowError:
        finite = False
    if not finite or value < 0:
        shown = f"about 2**{value.bit_length()}" if isinstance(value, int) else repr(value)
        raise InvalidDurationError(f"{what} must be a finite non-negative number, got {shown}")


def check_encodable(values: Iterable[str], what: str) -> None:
    """InvalidInputError unless every value encodes as UTF-8 (a lone surrogate does not), checked
    before anything is sent rather than failing in the client mid-batch."""
    text = "".join(values)
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} contains text that is not valid Unicode ({exc.object[exc.start : exc.end]!r})"
        ) from None


def _optional_timestamp(value: str | None, what: str) -> str:
    return normalize_timestamp(value, what) if value else ""


# --- progress ----------------------------------------------------------------------------------


#: The progress fields the course averages read, in the order progress_figures takes them.
PROGRESS_FIGURE_FIELDS = ("overallScore", "startedAt", "completedAt")


def progress_figures(
    score: str | None, started_at: str | None, completed_at: str | None
) -> tuple[int | None, int | None]:
    """What one progress hash adds to its course's averages: the score in thousandths (when
    positive) and the milliseconds from start to completion (when both parse and it completed
    after it started); None for each the averages skip. As ``progress_figures`` in
    ``lua/_prelude.lua``, which reads stored hashes by the same rules."""
    if score and score.isdigit() and score.isascii():
        parsed = float(score)  # what parseFloat reads of plain digits (a save's usual score)
    else:
        parsed = safe_parse_number(score or "", 0)
    milli = js_round(parsed * 1000) if parsed > 0 else None
    if not (started_at and completed_at):  # most saves: not completed yet, nothing to parse
        return milli, None
    started, completed = parse_timestamp_ms(started_at), parse_timestamp_ms(completed_at)
    if started is not None and completed is not None and completed > started:
        return milli, completed - started
    return milli, None


def figures_text(milli: int | None, time_ms: int | None) -> str | None:
    """Figures as the write function sends and keeps them (``milli|ms``, a part empty when
    skipped), or None when the averages skip both."""
    if milli is None and time_ms is None:
        return None
    return f"{'' if milli is None else milli}|{'' if time_ms is None else time_ms}"


def _check_module(module: ModuleProgress) -> None:
    # Messages are built only on failure: a bulk import checks millions of modules.
    module_id = check_id(module.module_id, "module id")
    if module.score is not None:
        _check_score(module.score, f"score of module {module_id}")
    if module.time_spent_minutes is not None:
        _check_minutes(module.time_spent_minutes, f"timeSpentMinutes of module {module_id}")
    if module.attempts is not None and module.attempts < 0:
        raise InvalidInputError(f"attempts of module {module_id} must be >= 0")
    if module.started_at:
        normalize_timestamp(module.started_at, f"started_at of module {module_id}")
    if module.completed_at:
        normalize_timestamp(module.completed_at, f"completed_at of module {module_id}")


# The modules' JSON in one serialiser call (as ``json.dumps`` of each module's
# ``model_dump(mode="json", exclude_none=True)``, compact, non-ASCII kept).
_MODULE_LIST = TypeAdapter(list[ModuleProgress])


def progress_to_fields(progress: EnhancedTrainingProgress) -> list[str]:
    """Validated hash values in PROGRESS_FIELDS order."""
    check_id(progress.user_id, "user id")
    check_id(progress.course_id, "course id")
    _check_score(progress.overall_score, "overallScore")
    _check_minutes(progress.total_time_spent_minutes, "totalTimeSpentMinutes")
    modules = progress.module_progress
    for module in modules:
        _check_module(module)
    started = _optional_timestamp(progress.started_at, "startedAt")
    completed = _optional_timestamp(progress.completed_at, "completedAt")
    if (
        started
        and completed
        and (parse_timestamp_ms(completed) or 0) < (parse_timestamp_ms(started) or 0)
    ):
        raise InvalidDateRangeError(f"completedAt {completed} is before startedAt {started}")
    values = [
        progress.status,
        _MODULE_LIST.dump_json(modules, exclude_none=True).decode() if modules else "[]",
        js_number(progress.overall_score),
        started,
        completed,
        _optional_timestamp(progress.last_accessed_at, "lastAccessedAt"),
        js_number(progress.total_time_spent_minutes),
        progress.certificate_id or "",
        _optional_timestamp(progress.certificate_issued_at, "certificateIssuedAt"),
    ]
    check_encodable(values, "progress")
    return values


def progress_from_hash(
    user_id: str, course_id: str, data: Mapping[str, str]
) -> EnhancedTrainingProgress | None:
    if not data:
        return None
    modules: list[ModuleProgress] = []
    raw_modules: Any = safe_parse_json(data.get("moduleProgress"), [])
    for item in raw_modules if isinstance(raw_modules, list) else []:
        try:
            modules.append(ModuleProgress.model_validate(item))
        except ValidationError:
            continue  # one malformed entry written elsewhere should not hide the rest
    status = data.get("status") or "not_started"
    return EnhancedTrainingProgress(
        user_id=user_id,
        course_id=course_id,
        status=status if status in PROGRESS_STATUSES else "not_started",  # type: ignore[arg-type]
        module_progress=modules,
        overall_score=safe_parse_number(data.get("overallScore")),
        started_at=data.get("startedAt") or "",
        completed_at=data.get("completedAt") or None,
        last_accessed_at=data.get("lastAccessedAt") or "",
        total_time_spent_minutes=safe_parse_number(data.get("totalTimeSpentMinutes")),
        certificate_id=data.get("certificateId") or None,
        certificate_issued_at=data.get("certificateIssuedAt") or None,
    )


# --- certifications ----------------------------------------------------------------------------


def certification_to_fields(record: TrainingCertificationRecord) -> dict[str, str]:
    """Validated hash fields of a certification (the seed's field names and formats)."""
    check_id(record.id, "certification id")
    check_id(record.user_id, "user id")
    check_id(record.course_id, "course id")
    _check_score(record.score, "score")
    issued = normalize_timestamp(record.issued_at, "issuedAt")
    expires = _optional_timestamp(record.expires_at, "expiresAt")
    claimed = _optional_timestamp(record.claimed_at, "claimedAt")
    issued_ms = parse_timestamp_ms(issued) or 0
    if expires and (parse_timestamp_ms(expires) or 0) <= issued_ms:
        raise InvalidDateRangeError(f"expiresAt {expires} is not after issuedAt {issued}")
    if claimed and (parse_timestamp_ms(claimed) or 0) < issued_ms:
        raise InvalidDateRangeError(f"claimedAt {claimed} is before issuedAt {issued}")
    fields = {
        "id": record.id,
        "userId": record.user_id,
        "courseId": record.course_id,
        "courseName": _text_map_json(record.course_name),
        "userName": record.user_name,
        "userEmail": record.user_email,
        "status": record.status,
        "issuedAt": issued,
        "claimedAt": claimed,
        "expiresAt": expires,
        "credentialUrl": record.credential_url or "",
        "verificationCode": record.verification_code,
        "score": js_number(record.score),
    }
    check_encodable(fields.values(), f"certification {record.id}")
    return fields


def certification_from_hash(data: Mapping[str, str]) -> TrainingCertificationRecord | None:
    if not data or not data.get("id"):
        return None
    course_name = safe_parse_json(data.get("courseName"), {"en": ""})
    try:
        return TrainingCertificationRecord(
            id=data["id"],
            user_id=data.get("userId", ""),
            course_id=data.get("courseId", ""),
            course_name=course_name if isinstance(course_name, dict) else {"en": str(course_name)},
            user_name=data.get("userName", ""),
            user_email=data.get("userEmail", ""),
            status=data.get("status", "issued"),  # type: ignore[arg-type]
            issued_at=data.get("issuedAt", ""),
            claimed_at=data.get("claimedAt") or None,
            expires_at=data.get("expiresAt") or None,
            credential_url=data.get("credentialUrl") or None,
            verification_code=data.get("verificationCode", ""),
            score=safe_parse_number(data.get("score")),
        )
    except ValidationError as exc:
        raise StoreError(f"stored certification {data.get('id')} is malformed: {exc}") from exc


# --- courses -----------------------------------------------------------------------------------

_COURSE_BOOL_FIELDS = ("isPublished", "isRequired", "certificateEnabled")
_COURSE_INT_FIELDS = ("duration", "passingScore", "order")


def check_course(
    course: TrainingCourse, stamped: Iterable[str] = ("createdAt", "updatedAt")
) -> TrainingCourse:
    """The course if every field is one the older reader can use, its timestamps (those named in
    ``stamped``: an update checks the ones it writes) in the stored form; InvalidInputError (or a
    subclass) otherwise."""
    check_id(course.id, "course id")
    if course.category not in COURSE_CATEGORIES:
        raise InvalidInputError(
            f"category must be one of {', '.join(COURSE_CATEGORIES)}; got {course.category!r}"
        )
    if course.level not in COURSE_LEVELS:
        raise InvalidInputError(
            f"level must be one of {', '.join(COURSE_LEVELS)}; got {course.level!r}"
        )
    _check_minutes(course.duration, "duration")
    _check_score(course.passing_score, "passingScore")
    seen: set[str] = set()
    for module in course.modules:
        check_id(module.id, "module id")
        if module.id in seen:
            raise InvalidInputError(f"module id {module.id!r} appears twice in course {course.id}")
        seen.add(module.id)
        _check_score(module.passing_score, f"passingScore of module {module.id}")
        _check_minutes(module.duration, f"duration of module {module.id}")
        for lesson in module.lessons:
            _check_minutes(lesson.duration, f"duration of lesson {lesson.id} of module {module.id}")
    stamps = {
        name: normalize_timestamp(value, alias) if value else ""
        for name, alias, value in (
            ("created_at", "createdAt", course.created_at),
            ("updated_at", "updatedAt", course.updated_at),
        )
        if alias in stamped
    }
    return course.model_copy(update=stamps)


def course_to_fields(course: TrainingCourse, only: set[str] | None = None) -> dict[str, str]:
    """Hash fields as the seed's ``toRedisHash`` writes them (``only``: camelCase names to keep)."""
    data = course.model_dump(mode="json", by_alias=True)
    # Nested values as JSON.stringify writes them: absent optional members left out, not null.
    compact = course.model_dump(mode="json", by_alias=True, exclude_none=True)
    fields: dict[str, str] = {}
    for name in data:
        if only is not None and name not in only:
            continue
        value = compact.get(name)
        if value is None:
            fields[name] = ""
        elif isinstance(value, bool):
            fields[name] = "true" if value else "false"
        elif isinstance(value, dict | list):
            fields[name] = _json(value)
        elif isinstance(value, int | float):
            fields[name] = js_number(value)
        else:
            fields[name] = str(value)
    check_encodable(fields.values(), f"course {course.id}")
    return fields


def _localized(text: str | None) -> dict[str, Any]:
    """A stored localized string. Plain text (not JSON) reads as English rather than failing the
    whole course, as the seed's JSON.parse would have."""
    if not text:
        return {}
    value = safe_parse_json(text, text)
    if isinstance(value, dict):
        return value
    return {"en": value} if isinstance(value, str) else {}


def course_from_hash(data: Mapping[str, str]) -> TrainingCourse | None:
    if not data or not data.get("id"):
        return None
    raw: dict[str, Any] = dict(data)
    raw["modules"] = safe_parse_json(data.get("modules"), [])
    for name in ("title", "description"):
        raw[name] = _localized(data.get(name))
    tiers = data.get("requiredForTiers")
    raw["requiredForTiers"] = safe_parse_json(tiers, None) if tiers else None
    for name in _COURSE_BOOL_FIELDS:
        raw[name] = data.get(name) == "true"
    for name in _COURSE_INT_FIELDS:
        if name in data:
            number = safe_parse_number(data.get(name))
            # The seed's parseInt; a value another writer stored past a double's range reads as 0.
            raw[name] = int(number) if math.isfinite(number) else 0
    try:
        return TrainingCourse.model_validate(raw)
    except ValidationError as exc:
        raise StoreError(f"stored course {data.get('id')} is malformed: {exc}") from exc
