"""Every write goes through one Lua script (``lua/apply.lua``): this module encodes events for it.

An event is validated and turned into (kind, keys, args) in Python; the script applies a batch
of them atomically and replies per event. A single call such as ``record_enrollment`` is a batch
of one; ``record_many`` sends many per round trip. Keys are deduplicated per batch and referred
to by position, so a batch of 1,000 enrolments in one course sends each shared key once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._codec import certification_to_fields, progress_to_fields
from ._context import Context
from ._exec import script_error
from ._index import base_keys
from ._protocol import Batch, Op, ScriptCall, batch, load_script
from ._time import day_bucket, epoch_ms, normalize_timestamp, to_iso
from .errors import InvalidStatusError, TrainingAnalyticsError
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
    """Events encoded for one ``apply.lua`` call (layouts: the comments atop ``lua/*.lua``).

    Keys are sent once each and referred to by position. Key positions and values shared by many
    events (a course's keys for one day) form a group, registered once per batch: bulk ingest
    spends its time on the events, not on repeating the same key names.
    """

    ctx: Context
    keys: list[str] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)
    groups: list[tuple[list[int], list[str]]] = field(default_factory=list)
    events: list[list[Any]] = field(default_factory=list)
    _group_index: dict[tuple[str, ...], int] = field(default_factory=dict)
    _days: dict[int, str] = field(default_factory=dict)
    _progress_key_makers: dict[str, Callable[[str], str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        k = self.ctx.keys
        for key in (k.index_marker(), *base_keys(self.ctx)):
            self._position(key)

    @property
    def size(self) -> int:
        return len(self.events)

    def _position(self, key: str) -> int:
        found = self.positions.get(key)
        if found is None:
            self.keys.append(key)
            found = self.positions[key] = len(self.keys)
        return found

    def _group(
        self,
        name: tuple[str, ...],
        build: Callable[..., list[str]],
        *args: str,
        values: Sequence[str] = (),
    ) -> int:
        """Index (1-based) of the group ``name``, its keys ``build(*args)`` (built on first use)."""
        index = self._group_index.get(name)
        if index is None:
            self.groups.append(([self._position(key) for key in build(*args)], list(values)))
            index = self._group_index[name] = len(self.groups)
        return index

    def _moment(self, at: datetime | str | None) -> tuple[str, str]:
        """(day in the configured zone, epoch ms as text) of an event time."""
        moment = self.ctx.moment(at)
        ms = epoch_ms(moment)
        # Every zone's offset is a multiple of 15 minutes, so the day is constant within one.
        quarter = ms // 900_000
        day = self._days.get(quarter)
        if day is None:
            day = self._days[quarter] = day_bucket(moment, self.ctx.tz)
        return day, str(ms)

    def _progress_position(self, user_id: str, course_id: str) -> int:
        """Position of a learner's progress hash; the user id is checked by the caller."""
        make = self._progress_key_makers.get(course_id)
        if make is None:
            make = self.ctx.keys.user_course_progress_of(course_id)
            self._progress_key_makers[course_id] = make
        return self._position(make(user_id))

    # --- encoders, one per event kind ----------------------------------------------------

    def _enrollment_keys(self, course_id: str, day: str) -> list[str]:
        k = self.ctx.keys
        return [
            k.course_enrollments(course_id),
            k.enrollment_by_date(day),
            k.enrollment_timeseries(),
            k.course_enrollments_by_day(course_id),
            k.course_stats(course_id),
            k.course_analytics_cache(course_id),
            k.overview_metrics_cache(),
        ]

    def _completion_keys(self, course_id: str, day: str) -> list[str]:
        k = self.ctx.keys
        return [
            *self._enrollment_keys(course_id, day),
            k.course_completions(course_id),
            k.completion_by_date(day),
            k.completion_timeseries(),
            k.course_completions_by_day(course_id),
        ]

    def enrollment(self, user_id: str, course_id: str, at: datetime | str | None) -> None:
        check_id(user_id, "user id")
        day, ms = self._moment(at)
        group = self._group(
            ("E", course_id, day), self._enrollment_keys, course_id, day, values=(course_id, day)
        )
        progress = self._progress_position(user_id, course_id)
        self.events.append(["E", group, progress, user_id, ms])

    def completion(self, user_id: str, course_id: str, at: datetime | str | None) -> None:
        check_id(user_id, "user id")
        day, ms = self._moment(at)
        group = self._group(
            ("C", course_id, day), self._completion_keys, course_id, day, values=(course_id, day)
        )
        progress = self._progress_position(user_id, course_id)
        self.events.append(["C", group, progress, user_id, ms])

    def _module_start_keys(self, course_id: str, module_id: str) -> list[str]:
        k = self.ctx.keys
        return [k.module_enrollments(course_id, module_id), k.course_analytics_cache(course_id)]

    def _module_completion_keys(self, course_id: str, module_id: str) -> list[str]:
        keys = self._module_start_keys(course_id, module_id)
        return [*keys, self.ctx.keys.module_completions(course_id, module_id)]

    def module_start(self, user_id: str, course_id: str, module_id: str) -> None:
        check_id(user_id, "user id")
        group = self._group(
            ("S", course_id, module_id), self._module_start_keys, course_id, module_id
        )
        self.events.append(["S", group, 0, user_id])

    def module_completion(self, user_id: str, course_id: str, module_id: str) -> None:
        check_id(user_id, "user id")
        group = self._group(
            ("M", course_id, module_id), self._module_completion_keys, course_id, module_id
        )
        self.events.append(["M", group, 0, user_id])

    def progress(self, progress: EnhancedTrainingProgress) -> None:
        k = self.ctx.keys
        values = progress_to_fields(progress)
        user, course = progress.user_id, progress.course_id
        group = self._group(("P", course), self._progress_keys, course)
        own = self._position(k.user_course_progress(user, course))
        self.events.append(["P", group, own, user, *values])

    def _progress_keys(self, course_id: str) -> list[str]:
        k = self.ctx.keys
        return [
            k.course_enrollments(course_id),
            k.course_stats(course_id),
            k.course_analytics_cache(course_id),
        ]

    def _certification_keys(self) -> list[str]:
        k = self.ctx.keys
        return [
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
        pairs: list[str] = []
        for name, value in fields.items():
            pairs += [name, value]
        group = self._group(("cert",), self._certification_keys)
        own = self._position(self.ctx.keys.training_certification(record.id))
        self.events.append(["I", group, own, record.id, *pairs])

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
        group = self._group(("cert",), self._certification_keys)
        own = self._position(self.ctx.keys.training_certification(cert_id))
        self.events.append(["U", group, own, cert_id, new_status, claim_time])

    def call(self) -> ScriptCall:
        document = json.dumps([self.groups, self.events], ensure_ascii=False, separators=(",", ":"))
        return ScriptCall(APPLY, tuple(self.keys), (document,))


def _outcome(reply: Any) -> Outcome:
    if isinstance(reply, int):
        return reply == 1
    return script_error(str(reply))


def outcomes(replies: list[Any]) -> list[Outcome]:
    """The script's per-event replies as outcomes."""
    return [_outcome(reply) for reply in replies]


def request(events: EventBatch) -> Batch:
    """The round trip that applies a batch of events."""
    return batch(events.call())


def first_reply(replies: list[Any]) -> list[Any]:
    """The script's reply within the replies of its one-call batch."""
    result: list[Any] = replies[0]
    return result


def send(events: EventBatch) -> Op[list[Any]]:
    """Apply a batch (one round trip); the script's reply, one entry per event."""
    if events.size == 0:
        return []
    replies = yield request(events)
    return first_reply(replies)


def apply(events: EventBatch) -> Op[list[Outcome]]:
    """Apply a batch (one round trip); the outcome of each event, in order."""
    return outcomes((yield from send(events)))


def apply_one(events: EventBatch) -> Op[bool]:
    """A batch of one event: its error raised, else whether it changed the store."""
    (outcome,) = yield from apply(events)
    if isinstance(outcome, TrainingAnalyticsError):
        raise outcome
    return outcome
