"""From a statement to at most one of this project's events (docs/xapi.md has the table).

Which activity is a course and which a module is decided from its type, the cmi5 category, or
configured IRI patterns; a module's course comes from ``context.contextActivities`` (parent,
then grouping). A statement that maps to nothing says why, so the service can count and log it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, NamedTuple, TypeAlias, cast

from .._time import to_iso
from ..errors import InvalidInputError
from ..keys import MAX_ID_LENGTH
from ..types import (
    CertificationIssuedEvent,
    CompletionEvent,
    EnhancedTrainingProgress,
    EnrollmentEvent,
    ModuleCompletionEvent,
    ModuleProgress,
    ModuleStartEvent,
    ProgressEvent,
    TrainingCertificationRecord,
)
from . import vocabulary as v
from .ids import LEARNER_IDENTIFIERS, ActivityIdRule, LearnerIdentifier, activity_id, learner_id
from .models import Activity, Context, Result, Statement, object_kind

MappedEvent: TypeAlias = (
    EnrollmentEvent
    | CompletionEvent
    | ModuleStartEvent
    | ModuleCompletionEvent
    | ProgressEvent
    | CertificationIssuedEvent
)
Role: TypeAlias = Literal["course", "module", "certificate", "block"]

_STARTS: Final = frozenset({v.LAUNCHED, v.INITIALIZED, v.ATTEMPTED})
_COURSE_COMPLETIONS: Final = frozenset({v.COMPLETED, v.PASSED, v.SATISFIED})
# Y and M are calendar units; a duration in them is read with 365 and 30 days.
_DURATION: Final = re.compile(
    r"^P(?:(?P<W>[\d.]+)W)?(?:(?P<Y>[\d.]+)Y)?(?:(?P<Mo>[\d.]+)M)?(?:(?P<D>[\d.]+)D)?"
    r"(?:T(?:(?P<H>[\d.]+)H)?(?:(?P<Mi>[\d.]+)M)?(?:(?P<S>[\d.]+)S)?)?$"
)
_MINUTES: Final = {
    "W": 7 * 24 * 60.0,
    "Y": 365 * 24 * 60.0,
    "Mo": 30 * 24 * 60.0,
    "D": 24 * 60.0,
    "H": 60.0,
    "Mi": 1.0,
    "S": 1 / 60,
}


@dataclass(frozen=True, slots=True)
class MappingRules:
    """What decides an activity's role and the ids (every field has the documented default)."""

    course_types: frozenset[str] = v.COURSE_TYPES
    module_types: frozenset[str] = v.MODULE_TYPES
    certificate_types: frozenset[str] = v.CERTIFICATE_TYPES
    course_pattern: re.Pattern[str] | None = None
    """Activity IRIs matching it are courses; a named group ``id`` gives the course id."""
    module_pattern: re.Pattern[str] | None = None
    """Activity IRIs matching it are modules; a named group ``id`` gives the module id."""
    activity_id: ActivityIdRule = "last-segment"
    learner_id: tuple[LearnerIdentifier, ...] = LEARNER_IDENTIFIERS

    @classmethod
    def of(
        cls,
        *,
        course_pattern: str | None = None,
        module_pattern: str | None = None,
        activity_id: ActivityIdRule = "last-segment",
        learner_id: tuple[LearnerIdentifier, ...] | list[LearnerIdentifier] = LEARNER_IDENTIFIERS,
    ) -> MappingRules:
        """Rules from configuration text; InvalidInputError for a pattern that does not
        compile or an empty learner identifier list."""
        if not learner_id:
            raise InvalidInputError("learner_id needs at least one identifier")
        return cls(
            course_pattern=_compile(course_pattern, "course pattern"),
            module_pattern=_compile(module_pattern, "module pattern"),
            activity_id=activity_id,
            learner_id=tuple(learner_id),
        )


def _compile(pattern: str | None, what: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        message = f"the xAPI {what} {pattern!r} is not a regular expression: {exc}"
        raise InvalidInputError(message) from exc


class Mapped(NamedTuple):
    event: MappedEvent | None
    ignored: str | None
    """Why nothing was mapped (None when ``event`` is set)."""


class _UnmappedError(Exception):
    """Why a statement maps to nothing (caught in ``map_statement``, never raised out)."""


def _type(activity: Activity) -> str | None:
    definition = activity.get("definition")
    return None if definition is None else definition.get("type")


def _role(activity: Activity, rules: MappingRules, cmi5: bool) -> Role | None:
    kind = _type(activity)
    if kind is not None:
        if kind in rules.certificate_types:
            return "certificate"
        if kind in rules.course_types:
            return "course"
        if kind == v.CMI5_BLOCK:
            return "block"
        if kind in rules.module_types:
            return "module"
    if rules.course_pattern is not None and rules.course_pattern.search(activity["id"]):
        return "course"
    if rules.module_pattern is not None and rules.module_pattern.search(activity["id"]):
        return "module"
    # A cmi5-defined statement's object is an assignable unit unless typed otherwise.
    return "module" if cmi5 else None


def _id(activity: Activity, role: Role, rules: MappingRules) -> str:
    pattern = rules.course_pattern if role == "course" else rules.module_pattern
    iri = activity["id"]
    if pattern is not None and "id" in pattern.groupindex:
        match = pattern.search(iri)
        if match is not None and match.group("id"):
            iri = match.group("id")
            value = activity_id(iri, "iri")
            return _bounded(value, role)
    return _bounded(activity_id(iri, rules.activity_id), role)


def _bounded(value: str, role: str) -> str:
    if len(value) > MAX_ID_LENGTH:
        raise _UnmappedError(f"the {role} id is over {MAX_ID_LENGTH} characters once encoded")
    return value


def _is_cmi5(context: Context | None) -> bool:
    if context is None or "contextActivities" not in context:
        return False
    categories = context["contextActivities"].get("category", ())
    return any(a["id"] == v.CMI5_CATEGORY for a in categories)


def _context_course(context: Context | None, rules: MappingRules) -> Activity:
    if context is not None and "contextActivities" in context:
        found = context["contextActivities"]
        for activity in (*found.get("parent", ()), *found.get("grouping", ())):
            if _role(activity, rules, cmi5=False) == "course":
                found_course: Activity = activity
                return found_course
    raise _UnmappedError("no course in context.contextActivities parent or grouping")


def score_percent(result: Result | None) -> int | float | None:
    """0-100 from ``scaled`` (clamped at 0), else from ``raw`` with ``min`` and ``max``; 2
    decimals, whole numbers as an int."""
    score = _score(result)
    return None if score is None else int(score) if score.is_integer() else score


def _score(result: Result | None) -> float | None:
    if result is None or "score" not in result:
        return None
    score = result["score"]
    if "scaled" in score:
        return round(max(0.0, score["scaled"]) * 100, 2)
    if "raw" in score and "min" in score and "max" in score:
        low, high = score["min"], score["max"]
        if high == low:
            return None
        return round((score["raw"] - low) / (high - low) * 100, 2)
    return None


def duration_minutes(duration: str | None) -> int | float | None:
    """Minutes in an ISO 8601 duration, 2 decimals; whole minutes as an int (stored as ``10``,
    not ``10.0``, as the same figure sent as an event would be)."""
    if duration is None:
        return None
    match = _DURATION.match(duration)
    if match is None:  # the model's pattern accepted it: a form this reading does not cover
        return None
    total = 0.0
    for unit, value in match.groupdict().items():
        if value:
            total += float(value) * _MINUTES[unit]
    return int(total) if total.is_integer() else round(total, 2)


def _progress_percent(result: Result | None) -> float | None:
    extensions = None if result is None else result.get("extensions")
    if not extensions or v.CMI5_PROGRESS not in extensions:
        return None
    value = extensions[v.CMI5_PROGRESS]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise _UnmappedError("the cmi5 progress extension is not a number from 0 to 100")
    return float(value)


def map_statement(statement: Statement, rules: MappingRules, stored: datetime) -> Mapped:
    """The event ``statement`` stands for, or why there is none. ``stored`` (when the service
    received it) is the event's time when the statement has no ``timestamp``."""
    try:
        return Mapped(_map(statement, rules, stored), None)
    except _UnmappedError as why:
        return Mapped(None, str(why))


def _map(statement: Statement, rules: MappingRules, stored: datetime) -> MappedEvent:
    verb = statement.verb["id"]
    if object_kind(statement.object) != "Activity":
        raise _UnmappedError(f"the object is not an activity ({verb})")
    target = cast(Activity, statement.object)
    user = learner_id(statement.actor, rules.learner_id)
    if user is None:
        raise _UnmappedError("the actor is a group or has none of the configured identifiers")
    user = _bounded(user, "learner")
    at = statement.timestamp or stored
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    context = statement.context
    role = _role(target, rules, _is_cmi5(context))
    if verb == v.UNREGISTERED:
        raise _UnmappedError("unregistered is not supported: enrolments are never removed")
    if role == "course":
        course = _id(target, role, rules)
        if verb == v.REGISTERED:
            return EnrollmentEvent(user_id=user, course_id=course, at=at)
        if verb in _COURSE_COMPLETIONS:
            return CompletionEvent(user_id=user, course_id=course, at=at)
        if verb == v.PROGRESSED:
            return _progress(statement, user, course, None, at)
    elif role == "module":
        if verb in _STARTS or verb in (v.COMPLETED, v.PROGRESSED):
            module = _id(target, role, rules)
            course = _id(_context_course(context, rules), "course", rules)
            if verb == v.COMPLETED:
                return ModuleCompletionEvent(
                    user_id=user, course_id=course, module_id=module, at=at
                )
            if verb == v.PROGRESSED:
                return _progress(statement, user, course, module, at)
            return ModuleStartEvent(user_id=user, course_id=course, module_id=module, at=at)
    elif role == "certificate" and verb == v.EARNED:
        return _certificate(statement, target, user, at, rules)
    raise _UnmappedError(f"verb {verb} on {role or 'an activity of no known role'} is not mapped")


def _progress(
    statement: Statement, user: str, course: str, module: str | None, at: datetime
) -> ProgressEvent:
    result = statement.result
    percent = _progress_percent(result)
    score = score_percent(result)
    minutes = duration_minutes(None if result is None else result.get("duration"))
    if percent is None and score is None and minutes is None:
        raise _UnmappedError("progressed with no cmi5 progress extension, score or duration")
    moment = to_iso(at)
    modules = (
        []
        if module is None
        else [
            ModuleProgress(
                module_id=module,
                status="in_progress",
                score=score,
                time_spent_minutes=minutes,
            )
        ]
    )
    progress = EnhancedTrainingProgress(
        user_id=user,
        course_id=course,
        status="in_progress",
        module_progress=modules,
        overall_score=score or 0,
        last_accessed_at=moment,
        total_time_spent_minutes=minutes or 0,
    )
    return ProgressEvent(progress=progress, at=at)


def _certificate(
    statement: Statement, target: Activity, user: str, at: datetime, rules: MappingRules
) -> CertificationIssuedEvent:
    course_activity = _context_course(statement.context, rules)
    course = _id(course_activity, "course", rules)
    certificate = _bounded(activity_id(target["id"], rules.activity_id), "certificate")
    definition = course_activity.get("definition", {})
    actor = statement.actor
    record = TrainingCertificationRecord(
        id=certificate,
        user_id=user,
        course_id=course,
        course_name=dict(definition.get("name", {})),
        user_name=actor.get("name", ""),
        user_email=actor.get("mbox", "").removeprefix("mailto:"),
        issued_at=to_iso(at),
        score=score_percent(statement.result) or 0,
    )
    return CertificationIssuedEvent(certification=record, at=at)
