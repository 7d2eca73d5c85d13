"""The fast way in for progress saves already in the stored form (what a bulk import brings).

A progress save's general path validates a model with Python hooks on every number, then checks
each module again in Python: about 30 µs of client CPU for a save of four modules, most of a bulk
import's time on such events. Here one pydantic-core call checks a save whose every value is
already canonical (ids of printable ASCII, timestamps as ``toISOString`` prints them, JSON
numbers in range, no unknown or null fields) with native constraints only, and its modules come
out in the model's field order, ready to serialise as they are.

Anything else (a lax value the general path converts, an error to report, a rare date such as a
29th of February) is not decided here: ``progress_values`` answers None and the caller takes the
general path, which accepts or refuses it with its own typed error. So the fast path only ever
accepts what the general path accepts, and gives the same stored values (the property test in
``tests/test_canonical.py`` holds it to that).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, NamedTuple, NotRequired

from pydantic import ConfigDict, Field, Strict, StringConstraints, TypeAdapter, ValidationError
from pydantic import with_config as _with_config
from pydantic_core import to_json
from typing_extensions import TypedDict

from ._codec import _text_map_json, check_encodable, js_number
from ._writes import EventBatch
from .errors import InvalidInputError
from .keys import MAX_ID_LENGTH
from .types import MAX_SAFE_INTEGER

# Printable ASCII without what ids may not hold (keys.check_id: ':', braces, glob characters,
# backslash; whitespace and controls are outside the range anyway).
_ID_PATTERN = rf"^[!-)+-9;->@-Z^-z|~]{{1,{MAX_ID_LENGTH}}}$"
# toISOString's form with a date every calendar has (the 29th of February goes the general way,
# which knows leap years) and a year from 0001.
_TIMESTAMP_PATTERN = (
    r"^(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-"
    r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
    r"|(?:0[13578]|1[02])-31)"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z$"
)

_Id = Annotated[str, Strict(), StringConstraints(pattern=_ID_PATTERN)]
_Timestamp = Annotated[str, Strict(), StringConstraints(pattern=_TIMESTAMP_PATTERN)]
_Status = Literal["not_started", "in_progress", "completed"]
_Score = (
    Annotated[int, Strict(), Field(ge=0, le=100)]
    | Annotated[float, Strict(), Field(ge=0, le=100, allow_inf_nan=False)]
)
# The general path keeps an integer's digits up to the largest that still converts to a float
# (above it refuses it). The bound matters: a strict float field takes an integer the int branch
# declines, and would store it as a float.
_LARGEST_FLOAT_INT = 2**1024 - 2**970 - 1
_Minutes = (
    Annotated[int, Strict(), Field(ge=0, le=_LARGEST_FLOAT_INT)]
    | Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
)
_Attempts = Annotated[int, Strict(), Field(ge=0, le=MAX_SAFE_INTEGER)]


@_with_config(ConfigDict(extra="forbid"))
class _Module(TypedDict):
    # The order of ModuleProgress's fields: the validated dict serialises as its model would.
    moduleId: _Id
    status: _Status
    score: NotRequired[_Score]
    startedAt: NotRequired[_Timestamp]
    completedAt: NotRequired[_Timestamp]
    attempts: NotRequired[_Attempts]
    timeSpentMinutes: NotRequired[_Minutes]


@_with_config(ConfigDict(extra="forbid"))
class _Progress(TypedDict):
    userId: _Id
    courseId: _Id
    status: NotRequired[_Status]
    moduleProgress: NotRequired[list[_Module]]
    overallScore: NotRequired[_Score]
    startedAt: NotRequired[_Timestamp]
    completedAt: NotRequired[_Timestamp]
    lastAccessedAt: NotRequired[_Timestamp]
    totalTimeSpentMinutes: NotRequired[_Minutes]
    certificateId: NotRequired[Annotated[str, Strict()]]
    certificateIssuedAt: NotRequired[_Timestamp]


class CanonicalProgress(NamedTuple):
    """A progress save the fast path took: what ``EventBatch.progress_values`` adds."""

    user_id: str
    course_id: str
    values: list[str]


@_with_config(ConfigDict(extra="forbid"))
class _ProgressEvent(TypedDict):
    kind: Literal["progress"]
    progress: _Progress
    at: NotRequired[Any]  # not read for a progress save, on either path


_PROGRESS = TypeAdapter(_Progress).validator


def progress_values(raw: Mapping[str, Any]) -> CanonicalProgress | None:
    """The hash values (``_codec.PROGRESS_FIELDS`` order) of a progress save given in the
    canonical form, as ``_codec.progress_to_fields`` gives them; None when the save needs the
    general path (to convert a value, or to refuse it)."""
    try:
        progress = _PROGRESS.validate_python(raw)
    except ValidationError:
        return None
    return _canonical(progress)


def _canonical(progress: _Progress) -> CanonicalProgress | None:
    started = progress.get("startedAt", "")
    completed = progress.get("completedAt", "")
    # Canonical timestamps order as text does; the general path refuses this one.
    if started and completed and completed < started:
        return None
    certificate = progress.get("certificateId", "")
    # The one free text: every other value is ASCII by the patterns above (the general path
    # checks other text is valid Unicode).
    if not certificate.isascii():
        return None
    modules = progress.get("moduleProgress")
    score = progress.get("overallScore", 0)
    minutes = progress.get("totalTimeSpentMinutes", 0)
    values = [
        progress.get("status", "not_started"),
        to_json(modules).decode() if modules else "[]",
        str(score) if type(score) is int else js_number(score),
        started,
        completed,
        progress.get("lastAccessedAt", ""),
        str(minutes) if type(minutes) is int else js_number(minutes),
        certificate,
        progress.get("certificateIssuedAt", ""),
    ]
    return CanonicalProgress(progress["userId"], progress["courseId"], values)


@_with_config(ConfigDict(extra="forbid"))
class _Certificate(TypedDict):
    id: _Id
    userId: _Id
    courseId: _Id
    courseName: NotRequired[dict[Annotated[str, Strict()], Annotated[str, Strict()]]]
    userName: NotRequired[Annotated[str, Strict()]]
    userEmail: NotRequired[Annotated[str, Strict()]]
    status: NotRequired[Literal["issued", "claimed", "expired", "revoked"]]
    issuedAt: _Timestamp
    claimedAt: NotRequired[_Timestamp]
    expiresAt: NotRequired[_Timestamp]
    credentialUrl: NotRequired[Annotated[str, Strict()]]
    verificationCode: NotRequired[Annotated[str, Strict()]]
    score: NotRequired[_Score]


_CERTIFICATE = TypeAdapter(_Certificate).validator


def certification_values(raw: Mapping[str, Any]) -> tuple[str, dict[str, str]] | None:
    """(certificate id, the hash fields ``_codec.certification_to_fields`` gives) of a
    certificate record given in the canonical form; None when it needs the general path (to
    convert or refuse a value, or a claimed record without its claim time, which the event's
    time supplies there)."""
    try:
        record = _CERTIFICATE.validate_python(raw)
    except ValidationError:
        return None
    return _certificate_fields(record)


def _certificate_fields(record: _Certificate) -> tuple[str, dict[str, str]] | None:
    status = record.get("status", "issued")
    issued = record["issuedAt"]
    claimed = record.get("claimedAt", "")
    expires = record.get("expiresAt", "")
    # Canonical timestamps order as text does; the general path refuses these.
    if (
        (status == "claimed" and not claimed)
        or (expires and expires <= issued)
        or (claimed and claimed < issued)
    ):
        return None
    fields = {
        "id": record["id"],
        "userId": record["userId"],
        "courseId": record["courseId"],
        "courseName": _text_map_json(record.get("courseName", {})),
        "userName": record.get("userName", ""),
        "userEmail": record.get("userEmail", ""),
        "status": status,
        "issuedAt": issued,
        "claimedAt": claimed,
        "expiresAt": expires,
        "credentialUrl": record.get("credentialUrl", ""),
        "verificationCode": record.get("verificationCode", ""),
        "score": js_number(record.get("score", 0)),
    }
    try:
        check_encodable(fields.values(), "certification")
    except InvalidInputError:  # the general path refuses it, with its own message
        return None
    return record["id"], fields


# --- a JSON Lines line of any kind ----------------------------------------------------------
#
# Each kind's line in the form exports and platforms write (camelCase names, no null or unknown
# field, ids and times canonical where the encoder would otherwise check or convert them),
# parsed and checked in one pydantic-core call. What comes out is the encoder call the general
# path makes for the same line (``ingest.encode`` of its model), with the same arguments: where
# the fast path skips a check (a learner's id matched by the pattern above), the check passes.


@_with_config(ConfigDict(extra="forbid"))
class _LearnerLine(TypedDict):
    kind: Literal["enrollment", "completion"]
    userId: _Id
    courseId: _Id
    at: NotRequired[_Timestamp]


@_with_config(ConfigDict(extra="forbid"))
class _ModuleLine(TypedDict):
    kind: Literal["module_start", "module_completion"]
    userId: _Id
    courseId: _Id
    moduleId: _Id
    at: NotRequired[Any]  # not read for a module event, on either path


@_with_config(ConfigDict(extra="forbid"))
class _IssueLine(TypedDict):
    kind: Literal["certification_issued"]
    certification: _Certificate
    at: NotRequired[Any]  # read only for a claimed record without its claim time: declined


@_with_config(ConfigDict(extra="forbid"))
class _StatusLine(TypedDict):
    kind: Literal["certification_status"]
    certId: Annotated[str, Strict()]
    newStatus: Literal["issued", "claimed", "expired", "revoked"]
    # Not converted on the general path either (the encoder checks them): passed as they are.
    claimedAt: NotRequired[Any]
    at: NotRequired[Any]


_LINE = TypeAdapter(
    Annotated[
        _LearnerLine | _ModuleLine | _ProgressEvent | _IssueLine | _StatusLine,
        Field(discriminator="kind"),
    ]
).validator
_validate_line = _LINE.validate_json


class CanonicalEvent(NamedTuple):
    """A line the fast path took: the ``EventBatch`` encoder to call, and its arguments."""

    encoder: Callable[..., None]
    args: tuple[Any, ...]


def line_event(line: bytes) -> CanonicalEvent | CanonicalProgress | None:
    """A JSON Lines line of an event in the canonical form, as its encoder call (a progress
    save as ``progress_values`` gives it); None for any other line, which the general path
    reads (and accepts or refuses as before)."""
    try:
        event: Any = _validate_line(line)
    except ValidationError:
        return None
    kind = event["kind"]
    if kind == "module_start":
        return CanonicalEvent(
            EventBatch.checked_module_start, (event["userId"], event["courseId"], event["moduleId"])
        )
    if kind == "module_completion":
        return CanonicalEvent(
            EventBatch.checked_module_completion,
            (event["userId"], event["courseId"], event["moduleId"]),
        )
    if kind == "progress":
        return _canonical(event["progress"])
    if kind == "enrollment":
        return CanonicalEvent(
            EventBatch.checked_enrollment, (event["userId"], event["courseId"], event.get("at"))
        )
    if kind == "completion":
        return CanonicalEvent(
            EventBatch.checked_completion, (event["userId"], event["courseId"], event.get("at"))
        )
    if kind == "certification_status":
        return CanonicalEvent(
            EventBatch.certification_status,
            (event["certId"], event["newStatus"], event.get("claimedAt"), event.get("at")),
        )
    issued = _certificate_fields(event["certification"])
    return None if issued is None else CanonicalEvent(EventBatch.certification_fields, issued)
