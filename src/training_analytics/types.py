"""Pydantic models of the seed's interfaces.

Python attributes are snake_case; JSON (``model_dump(by_alias=True)`` / ``model_dump_json()``)
uses the seed's camelCase field names. Models accept either spelling on input. Their field types
are deliberately permissive where the older system may have stored odd values; the write paths
check the business rules (score range, known statuses, parseable dates) themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SkipValidation
from pydantic.alias_generators import to_camel

from ._time import to_iso

LocalizedString: TypeAlias = dict[str, str]
"""A mapping of language code to text (``{"en": ..., "es": ..., "pt": ...}``)."""

ProgressStatus: TypeAlias = Literal["not_started", "in_progress", "completed"]
CertificationStatus: TypeAlias = Literal["issued", "claimed", "expired", "revoked"]
CourseCategory: TypeAlias = Literal["sales", "technical", "legal", "product"]
CourseLevel: TypeAlias = Literal["basic", "intermediate", "advanced"]
CourseStatus: TypeAlias = Literal["draft", "published", "archived"]
ModuleType: TypeAlias = Literal["video", "reading", "quiz", "download"]
LessonType: TypeAlias = Literal["video", "reading", "download"]
PartnerTier: TypeAlias = str
#: JavaScript's Number.MAX_SAFE_INTEGER: the older (TypeScript) reader loses larger integers.
MAX_SAFE_INTEGER = 2**53 - 1


def _number(value: Any) -> Any:
    # JSON has no integer limit, but the stored form (and the reader of it) is a double.
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
        try:
            float(value)
        except OverflowError:
            raise ValueError(
                f"number of about 2**{value.bit_length()} is too large for a float"
            ) from None
    return value


def _integer(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
        raise ValueError(
            f"integer of about 2**{value.bit_length()} is past {MAX_SAFE_INTEGER} (2**53 - 1)"
        )
    return value


Number: TypeAlias = Annotated[int | float, BeforeValidator(_number)]
"""A JSON number (not a boolean, and within a float's range)."""
Integer: TypeAlias = Annotated[int, BeforeValidator(_integer)]
"""An integer a JavaScript reader holds exactly (not a boolean)."""


def _timestamp_text(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("a datetime timestamp must be timezone-aware")
        return to_iso(value)
    return value


Timestamp: TypeAlias = Annotated[str, BeforeValidator(_timestamp_text)]
"""An ISO-8601 timestamp as stored (``2025-01-15T10:30:00.000Z``); an aware datetime is accepted."""

"""A JSON number: integers stay integers (``90``, not ``90.0``), as JavaScript prints them."""


class SeedModel(BaseModel):
    """Base: camelCase aliases, accepts both spellings, serialises with the seed's names."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )


# --- analytics results -------------------------------------------------------------------------


class ModuleDropoffRate(SeedModel):
    module_id: str
    module_name: str
    dropoff_rate: float


class CourseDetailedAnalytics(SeedModel):
    enrollments: int
    completions: int
    completion_rate: float
    average_score: int
    average_time_to_complete: float
    """Hours, one decimal."""
    dropoff_rates: list[ModuleDropoffRate]


class ModuleFunnelStep(SeedModel):
    """One module of a course's funnel, in course order."""

    module_id: str
    module_name: str
    started: int
    completed: int
    dropoff_rate: float
    """Percent of those who started this module and have not completed it (as in drop-off)."""
    dropoff_to_next: float | None
    """Percent of those who completed this module and have not started the next one (None for
    the last module)."""


class StoreVersion(SeedModel):
    version: int
    """Raised by every write that changed training data; compare, never do arithmetic on it."""


class TimeSeriesDataPoint(SeedModel):
    date: str
    count: int


class CredentialClaimAnalytics(SeedModel):
    total_issued: int
    total_claimed: int
    claim_rate: float
    average_claim_time_hours: float
    pending: int
    expiring_in_30_days: int


class CredentialStats(SeedModel):
    """Certificates by effective status: one whose expiry has passed counts as expired."""

    issued: int
    claimed: int
    pending: int
    expired: int
    revoked: int = 0


class TrainingOverviewMetrics(SeedModel):
    total_courses: int
    published_courses: int
    draft_courses: int
    total_enrollments: int
    average_completion_rate: float
    total_certifications: int


# --- progress and certifications ---------------------------------------------------------------


class ModuleProgress(SeedModel):
    module_id: str
    status: ProgressStatus
    score: Number | None = None
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    attempts: Integer | None = None
    time_spent_minutes: Number | None = None


class EnhancedTrainingProgress(SeedModel):
    user_id: str
    course_id: str
    status: ProgressStatus = "not_started"
    module_progress: list[ModuleProgress] = Field(default_factory=list)
    overall_score: Number = 0
    started_at: Timestamp = ""
    completed_at: Timestamp | None = None
    last_accessed_at: Timestamp = ""
    total_time_spent_minutes: Number = 0
    certificate_id: str | None = None
    certificate_issued_at: Timestamp | None = None


class TrainingCertificationRecord(SeedModel):
    id: str
    user_id: str
    course_id: str
    course_name: LocalizedString = Field(default_factory=dict)
    user_name: str = ""
    user_email: str = ""
    status: CertificationStatus = "issued"
    issued_at: Timestamp
    claimed_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    credential_url: str | None = None
    verification_code: str = ""
    score: Number = 0


# --- course catalog ----------------------------------------------------------------------------


class Lesson(SeedModel):
    id: str
    title: LocalizedString
    type: str
    """video, reading or download (other values the older system stored read as reading)."""
    video_url: str | None = None
    content: LocalizedString | str | None = None
    download_url: str | None = None
    duration: Number = 0
    order: Integer = 0


class CourseQuizQuestion(SeedModel):
    id: str
    question: LocalizedString
    options: list[LocalizedString]
    correct_answer: Integer


class CourseModule(SeedModel):
    id: str
    title: LocalizedString
    description: LocalizedString | None = None
    lessons: list[Lesson] = Field(default_factory=list)
    quiz: list[CourseQuizQuestion] | None = None
    passing_score: Number | None = None
    order: Integer = 0
    duration: Number | None = None


class TrainingCourse(SeedModel):
    id: str
    title: LocalizedString
    description: LocalizedString = Field(default_factory=dict)
    category: str
    """sales, technical, legal or product (checked on create and update)."""
    level: str = "basic"
    """basic, intermediate or advanced (checked on create and update)."""
    duration: Number = 0
    """Minutes."""
    modules: list[CourseModule] = Field(default_factory=list)
    is_published: bool = False
    is_required: bool = False
    required_for_tiers: list[PartnerTier] | None = None
    passing_score: Number = 70
    certificate_enabled: bool = False
    order: Integer = 0
    created_at: Timestamp = ""
    created_by: str = ""
    updated_at: Timestamp = ""


class EnhancedModuleQuestion(SeedModel):
    id: str
    question: LocalizedString
    options: list[LocalizedString]
    correct_answer: Integer


class EnhancedCourseModule(SeedModel):
    id: str
    title: LocalizedString
    type: ModuleType
    duration: Number
    order: Integer
    video_url: str | None = None
    content: LocalizedString | None = None
    questions: list[EnhancedModuleQuestion] | None = None
    passing_score: Number | None = None


class CertificationInfo(SeedModel):
    credential_name: str | None = None
    credential_description: str | None = None
    issuer_name: str | None = None
    issuer_email: str | None = None


class EnhancedTrainingCourse(SeedModel):
    id: str | None = None
    title: LocalizedString
    description: LocalizedString
    category: str
    level: str
    estimated_hours: int
    modules: list[EnhancedCourseModule]
    has_certification: bool
    certification: CertificationInfo | None = None
    passing_score: Number
    status: CourseStatus
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    created_by: str | None = None


# --- pages of listings (cursor-paginated) ------------------------------------------------------


class CertificationPage(SeedModel):
    items: list[TrainingCertificationRecord]
    next_cursor: str | None = None
    """Pass it back as ``cursor`` for the next page; None at the end."""


class CourseAnalyticsItem(SeedModel):
    id: str
    title: LocalizedString
    status: Literal["published", "draft"]
    analytics: CourseDetailedAnalytics


class CourseAnalyticsPage(SeedModel):
    items: list[CourseAnalyticsItem]
    next_cursor: str | None = None


class SeriesSummary(SeedModel):
    total: int
    average: float
    """Per day over the range, two decimals."""
    peak: int
    peak_date: str | None
    """The first day with the peak count; None when every day is zero."""


class SeriesReport(SeedModel):
    points: list[TimeSeriesDataPoint]
    summary: SeriesSummary


# --- events for record_many --------------------------------------------------------------------


_Moment: TypeAlias = SkipValidation[datetime | str | None]
"""An event time: an aware datetime or an ISO-8601 string. Not converted here (pydantic would
take epoch seconds or a bare ``date``): the encoder checks it by the single calls' rules, so the
same values are accepted, and refused with the same InvalidDateError, either way."""


class _Event(SeedModel):
    at: _Moment = None
    """When it happened (aware datetime or ISO string); default: the facade's clock."""


class EnrollmentEvent(_Event):
    kind: Literal["enrollment"] = "enrollment"
    user_id: str
    course_id: str


class CompletionEvent(_Event):
    kind: Literal["completion"] = "completion"
    user_id: str
    course_id: str


class ModuleStartEvent(_Event):
    kind: Literal["module_start"] = "module_start"
    user_id: str
    course_id: str
    module_id: str


class ModuleCompletionEvent(_Event):
    kind: Literal["module_completion"] = "module_completion"
    user_id: str
    course_id: str
    module_id: str


class ProgressEvent(_Event):
    kind: Literal["progress"] = "progress"
    progress: EnhancedTrainingProgress


class CertificationIssuedEvent(_Event):
    kind: Literal["certification_issued"] = "certification_issued"
    certification: TrainingCertificationRecord


class CertificationStatusEvent(_Event):
    kind: Literal["certification_status"] = "certification_status"
    cert_id: str
    new_status: CertificationStatus
    claimed_at: _Moment = None


TrainingEvent: TypeAlias = Annotated[
    EnrollmentEvent
    | CompletionEvent
    | ModuleStartEvent
    | ModuleCompletionEvent
    | ProgressEvent
    | CertificationIssuedEvent
    | CertificationStatusEvent,
    Field(discriminator="kind"),
]


class RejectedEvent(SeedModel):
    index: int
    """Position of the event in the batch."""
    error: str
    """Name of the error class the single-event call would raise."""
    message: str


class BatchResult(SeedModel):
    """What ``record_many`` did: events that changed the store, replays that did not, refusals."""

    applied: int = 0
    unchanged: int = 0
    rejected: list[RejectedEvent] = Field(default_factory=list)

    def merge(self, other: BatchResult, offset: int) -> None:
        self.applied += other.applied
        self.unchanged += other.unchanged
        self.rejected.extend(
            RejectedEvent(index=r.index + offset, error=r.error, message=r.message)
            for r in other.rejected
        )


# --- one outcome per event (record_each) -------------------------------------------------------


class EventOutcome(SeedModel):
    """What became of one event of a ``record_each`` call."""

    index: int
    """Position of the event in the input (0-based)."""
    status: Literal["applied", "unchanged", "rejected"]
    """``applied`` changed the store, ``unchanged`` was a replay, ``rejected`` wrote nothing."""
    error: str | None = None
    """For a rejected event: the error class the single-event call would raise."""
    message: str | None = None


class EventOutcomes(SeedModel):
    """What ``record_each`` did: one outcome per event, in input order, and the totals."""

    results: list[EventOutcome] = Field(default_factory=list)
    applied: int = 0
    unchanged: int = 0
    rejected: int = 0
