"""Every write goes through one Lua script (``lua/apply.lua``): this module encodes events for it.

An event is validated and turned into (kind, keys, args) in Python; the script applies a batch
of them atomically and replies per event. A single call such as ``record_enrollment`` is a batch
of one; ``record_many`` sends many per round trip. Keys are deduplicated per batch and referred
to by position, so a batch of 1,000 enrolments in one course sends each shared key once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._codec import certification_to_fields, progress_to_fields
from ._context import Context
from ._exec import script_error
from ._index import initialize_index
from ._protocol import Arg, Op, ScriptCall, batch, load_script
from ._time import day_bucket, epoch_ms, normalize_timestamp, to_iso
from .errors import InvalidStatusError, NotIndexedError, TrainingAnalyticsError
from .keys import CERTIFICATION_STATUSES, check_id
from .types import EnhancedTrainingProgress, TrainingCertificationRecord

APPLY = load_script(
    "_prelude.lua",
    "enroll.lua",
    "complete.lua",
    "module.lua",
    "progress.lua",
    "certification.lua",
    "apply.lua",
)

Outcome = bool | TrainingAnalyticsError
"""Per event: True changed the store, False was a replay, or the error that refused it."""


@dataclass
class EventBatch:
    """Events encoded for one ``apply.lua`` call."""

    ctx: Context
    keys: list[str] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)
    argv: list[Arg] = field(default_factory=list)
    size: int = 0

    def __post_init__(self) -> None:
        self._position(self.ctx.keys.index_marker())

    def _position(self, key: str) -> int:
        found = self.positions.get(key)
        if found is None:
            self.keys.append(key)
            found = self.positions[key] = len(self.keys)
        return found

    def add(self, kind: str, keys: Sequence[str], args: Sequence[Arg]) -> None:
        self.argv.append(kind)
        self.argv.append(len(keys))
        self.argv.extend(self._position(key) for key in keys)
        self.argv.append(len(args))
        self.argv.extend(args)
        self.size += 1

    # --- encoders, one per event kind -------------------------------------------------------

    def _enrollment_keys(self, user_id: str, course_id: str, day: str) -> list[str]:
        k = self.ctx.keys
        return [
            k.course_enrollments(course_id),
            k.user_course_progress(user_id, course_id),
            k.enrollment_by_date(day),
            k.enrollment_timeseries(),
            k.course_enrollments_by_day(course_id),
            k.course_stats(course_id),
            k.course_analytics_cache(course_id),
            k.overview_metrics_cache(),
        ]

    def _moment_args(self, user_id: str, course_id: str, at: datetime) -> tuple[str, list[Arg]]:
        day = day_bucket(at, self.ctx.tz)
        ms = epoch_ms(at)
        return day, [user_id, day, ms, f"{ms}:{user_id}:{course_id}"]

    def enrollment(self, user_id: str, course_id: str, at: datetime | str | None) -> None:
        check_id(user_id, "user id")
        day, args = self._moment_args(user_id, course_id, self.ctx.moment(at))
        self.add("E", self._enrollment_keys(user_id, course_id, day), args)

    def completion(self, user_id: str, course_id: str, at: datetime | str | None) -> None:
        check_id(user_id, "user id")
        k = self.ctx.keys
        day, args = self._moment_args(user_id, course_id, self.ctx.moment(at))
        keys = [
            *self._enrollment_keys(user_id, course_id, day),
            k.course_completions(course_id),
            k.completion_by_date(day),
            k.completion_timeseries(),
            k.course_completions_by_day(course_id),
        ]
        self.add("C", keys, args)

    def module_start(self, user_id: str, course_id: str, module_id: str) -> None:
        k = self.ctx.keys
        check_id(user_id, "user id")
        keys = [k.module_enrollments(course_id, module_id), k.course_analytics_cache(course_id)]
        self.add("S", keys, [user_id])

    def module_completion(self, user_id: str, course_id: str, module_id: str) -> None:
        k = self.ctx.keys
        check_id(user_id, "user id")
        keys = [
            k.module_enrollments(course_id, module_id),
            k.course_analytics_cache(course_id),
            k.module_completions(course_id, module_id),
        ]
        self.add("M", keys, [user_id])

    def progress(self, progress: EnhancedTrainingProgress) -> None:
        k = self.ctx.keys
        values = progress_to_fields(progress)
        user, course = progress.user_id, progress.course_id
        keys = [
            k.user_course_progress(user, course),
            k.course_enrollments(course),
            k.course_stats(course),
            k.course_analytics_cache(course),
        ]
        self.add("P", keys, [user, *values])

    def _certification_keys(self, cert_id: str) -> list[str]:
        k = self.ctx.keys
        return [
            k.training_certification(cert_id),
            k.all_training_certifications(),
            *(k.certifications_by_status(s) for s in CERTIFICATION_STATUSES),
            k.certification_expiry("issued"),
            k.certification_expiry("claimed"),
            k.credential_stats(),
            k.credential_analytics_cache(),
            k.overview_metrics_cache(),
        ]

    def certification_issued(
        self, record: TrainingCertificationRecord, at: datetime | str | None
    ) -> None:
        if record.status == "claimed" and not record.claimed_at:
            # A claimed certificate carries its claim time, which claim analytics average.
            record = record.model_copy(update={"claimed_at": to_iso(self.ctx.moment(at))})
        fields = certification_to_fields(record)
        pairs: list[Arg] = [record.id]
        for name, value in fields.items():
            pairs += [name, value]
        self.add("I", self._certification_keys(record.id), pairs)

    def certification_status(
        self,
        cert_id: str,
        new_status: str,
        claimed_at: datetime | str | None,
        at: datetime | str | None,
    ) -> None:
        if new_status not in CERTIFICATION_STATUSES:
            raise InvalidStatusError(
                f"status must be one of {', '.join(CERTIFICATION_STATUSES)}; got {new_status!r}"
            )
        claim_time = ""
        if new_status == "claimed":
            claim_time = normalize_timestamp(
                claimed_at if claimed_at is not None else self.ctx.moment(at), "claimedAt"
            )
        self.add("U", self._certification_keys(cert_id), [cert_id, new_status, claim_time])

    def call(self) -> ScriptCall:
        return ScriptCall(APPLY, tuple(self.keys), tuple(self.argv))


def _outcome(reply: Any) -> Outcome:
    if isinstance(reply, int):
        return reply == 1
    return script_error(str(reply))


def apply(events: EventBatch) -> Op[list[Outcome]]:
    """Send a batch; on a store without the index marker, start the index (if empty) and retry."""
    if events.size == 0:
        return []
    call = events.call()
    try:
        (replies,) = yield batch(call)
    except NotIndexedError:
        yield from initialize_index(events.ctx)
        (replies,) = yield batch(call)
    return [_outcome(reply) for reply in replies]


def apply_one(events: EventBatch) -> Op[bool]:
    """A batch of one event: its error raised, else whether it changed the store."""
    (outcome,) = yield from apply(events)
    if isinstance(outcome, TrainingAnalyticsError):
        raise outcome
    return outcome
