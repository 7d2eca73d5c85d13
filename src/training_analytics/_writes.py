"""Every write goes through one server-side function (``lua/apply.lua`` and the handlers it is
assembled with): this module encodes events for it.

An event is validated and turned into (kind, keys, args) in Python; the function applies a batch
of them atomically and replies per event. A single call such as ``record_enrollment`` is a batch
of one, sent as plain arguments; ``record_many`` sends many per round trip in one JSON document,
with keys deduplicated and referred to by position, so a batch of 1,000 enrolments in one course
sends each shared key once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic_core import PydanticSerializationError, to_json

from . import zone
from ._codec import (
    PROGRESS_FIELDS,
    PROGRESS_FIGURE_FIELDS,
    certification_to_fields,
    progress_figures,
    progress_to_fields,
)
from ._context import Context
from ._index import base_keys
from ._protocol import Batch, Op, ScriptCall, load_script
from ._time import day_bucket, epoch_ms, from_epoch_ms, instant_ms, normalize_timestamp, to_iso
from ._wire import script_error
from .errors import InvalidIdError, InvalidInputError, InvalidStatusError, TrainingAnalyticsError
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
    # A write to the index marker that changes nothing (SETRANGE of no bytes): servers before
    # Redis 7 refuse it at its maxmemory, and then the whole call, before anything is written.
    legacy_guard="redis.call('SETRANGE', KEYS[1], 0, '')",
)

Outcome = bool | TrainingAnalyticsError
"""Per event: True changed the store, False was a replay, or the error that refused it."""


class _Group:
    """Keys and values many events share (a course's keys for one day): built and checked once
    per context, sent once per batch. Compared by identity, so a batch indexes it cheaply."""

    __slots__ = ("flat_keys", "flat_values", "keys", "values")

    def __init__(self, head: tuple[str, ...], keys: Sequence[str], values: Sequence[str] = ()):
        self.keys = tuple(keys)
        self.values = list(values)
        # What a batch of one event sends (see EventBatch.call).
        self.flat_keys = (*head, *keys)
        self.flat_values = (str(len(values)), *values)


# The context's memo holds groups and day buckets; past this many entries it starts over (a
# long-lived process writing to many courses over many days must not grow without bound).
_MEMO_LIMIT = 20_000
_QUARTER_MS = 900_000
# Where the fields the course averages read sit among a progress event's values.
_FIGURE_POSITIONS = tuple(PROGRESS_FIELDS.index(name) for name in PROGRESS_FIGURE_FIELDS)


class EventBatch:
    """Events encoded for one ``apply.lua`` call (layouts: the comments atop ``lua/*.lua``).

    Keys are sent once each and referred to by position; a group's keys and values are sent
    once per batch. A batch of one event goes out flat, as plain arguments (see ``call``): a
    single write should not pay for a JSON document.
    """

    __slots__ = ("_call", "_days", "_groups", "_sequence", "bulk", "ctx", "events", "first_index")

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # Per event: [kind, group, own key or None, args...]; call() turns the group and the own
        # key into positions.
        self.events: list[list[Any]] = []
        memo = ctx.memo
        self._groups: dict[tuple[str, ...], _Group] = memo.setdefault("groups", {})
        self._days: dict[int, str] = memo.setdefault("days", {})
        self._call: ScriptCall | None = None
        self._sequence: tuple[str, int] | None = None
        self.first_index = 0
        """The position of this batch's first event in its import (for error messages)."""
        self.bulk = False
        """Part of a ``record_many``: sent as a document even if it holds one event, so that it
        is encoded (and an unencodable id found) before any batch is sent."""

    def in_sequence(self, key: str, number: int) -> None:
        """Make this batch run only after batch ``number - 1`` of the stream whose counter is
        ``key`` (see ``lua/apply.lua``): pipelined batches then apply in submission order."""
        self._sequence = (key, number)
        self.bulk = True  # the sequence travels in the document

    @property
    def size(self) -> int:
        return len(self.events)

    def _head(self) -> tuple[str, ...]:
        """The keys every call's KEYS open with: the index marker, the base keys, then the
        store version."""
        head: tuple[str, ...] | None = self.ctx.memo.get("head")
        if head is None:
            k = self.ctx.keys
            head = self.ctx.memo["head"] = (
                k.index_marker(),
                *base_keys(self.ctx),
                k.store_version(),
            )
        return head

    def _remember(self, name: tuple[str, ...], group: _Group) -> _Group:
        if len(self._groups) >= _MEMO_LIMIT:
            self._groups.clear()
        self._groups[name] = group
        return group

    def _moment(self, at: datetime | str | None) -> tuple[str, str]:
        """(day in the configured zone, epoch ms as text) of an event time."""
        ms = epoch_ms(self.ctx.now()) if at is None else instant_ms(at, "at")
        # Today's offsets are whole quarter hours, so a day starts on a quarter-hour boundary
        # and every moment of a quarter hour falls on the same day. Historical offsets (local
        # mean time, -0:44:30 in Liberia until 1972) may not be: such a quarter is marked "",
        # and its moments are bucketed one by one.
        quarter = ms // _QUARTER_MS
        day = self._days.get(quarter)
        if day is None:
            if len(self._days) >= _MEMO_LIMIT:
                self._days.clear()
            tz, start = self.ctx.tz, quarter * _QUARTER_MS
            first = day_bucket(from_epoch_ms(start), tz)
            last = day_bucket(from_epoch_ms(start + _QUARTER_MS - 1), tz)
            day = self._days[quarter] = first if first == last else ""
        return day or day_bucket(from_epoch_ms(ms), self.ctx.tz), str(ms)

    # --- encoders, one per event kind ----------------------------------------------------

    def _enrollment_group(self, course_id: str, day: str) -> _Group:
        k = self.ctx.keys
        return _Group(
            self._head(),
            [
                k.course_enrollments(course_id),
                k.enrollment_by_date(day),
                k.enrollment_timeseries(),
                k.course_enrollments_by_day(course_id),
                k.course_stats(course_id),
                k.course_analytics_cache(course_id),
                k.overview_metrics_cache(),
                k.course_unenrolled_progress(course_id),
            ],
            (course_id, day),
        )

    def _completion_group(self, course_id: str, day: str) -> _Group:
        k = self.ctx.keys
        enrollment = self._enrollment_group(course_id, day)
        return _Group(
            self._head(),
            [
                *enrollment.keys,
                k.course_completions(course_id),
                k.completion_by_date(day),
                k.completion_timeseries(),
                k.course_completions_by_day(course_id),
            ],
            enrollment.values,
        )

    def enrollment(self, user_id: str, course_id: str, at: datetime | str | None) -> None:
        check_id(user_id, "user id")
        day, ms = self._moment(at)
        name = ("E", course_id, day)
        group = self._groups.get(name) or self._remember(
            name, self._enrollment_group(course_id, day)
        )
        self.events.append(["E", group, None, user_id, ms])

    def completion(self, user_id: str, course_id: str, at: datetime | str | None) -> None:
        check_id(user_id, "user id")
        day, ms = self._moment(at)
        name = ("C", course_id, day)
        group = self._groups.get(name) or self._remember(
            name, self._completion_group(course_id, day)
        )
        self.events.append(["C", group, None, user_id, ms])

    def _module_start_group(self, course_id: str, module_id: str) -> _Group:
        k = self.ctx.keys
        return _Group(
            self._head(),
            [k.module_enrollments(course_id, module_id), k.course_analytics_cache(course_id)],
        )

    def _module_completion_group(self, course_id: str, module_id: str) -> _Group:
        start = self._module_start_group(course_id, module_id)
        return _Group(
            self._head(), [*start.keys, self.ctx.keys.module_completions(course_id, module_id)]
        )

    def module_start(self, user_id: str, course_id: str, module_id: str) -> None:
        check_id(user_id, "user id")
        name = ("S", course_id, module_id)
        group = self._groups.get(name) or self._remember(
            name, self._module_start_group(course_id, module_id)
        )
        self.events.append(["S", group, None, user_id])

    def module_completion(self, user_id: str, course_id: str, module_id: str) -> None:
        check_id(user_id, "user id")
        name = ("M", course_id, module_id)
        group = self._groups.get(name) or self._remember(
            name, self._module_completion_group(course_id, module_id)
        )
        self.events.append(["M", group, None, user_id])

    def _progress_group(self, course_id: str) -> _Group:
        k = self.ctx.keys
        return _Group(
            self._head(),
            [
                k.course_enrollments(course_id),
                k.course_stats(course_id),
                k.course_analytics_cache(course_id),
                k.course_unenrolled_progress(course_id),
            ],
        )

    def progress(self, progress: EnhancedTrainingProgress) -> None:
        values = progress_to_fields(progress)
        # The new figures travel with the event: parsing them is cheaper here than in Lua.
        milli, time_ms = progress_figures(*(values[i] for i in _FIGURE_POSITIONS))
        user, course = progress.user_id, progress.course_id
        group = self._groups.get(("P", course)) or self._remember(
            ("P", course), self._progress_group(course)
        )
        own = self.ctx.keys.user_course_progress(user, course)
        figures = ("" if milli is None else str(milli), "" if time_ms is None else str(time_ms))
        self.events.append(["P", group, own, user, *values, *figures])

    def _certification_group(self) -> _Group:
        k = self.ctx.keys
        return _Group(
            self._head(),
            [
                k.all_training_certifications(),
                *(k.certifications_by_status(s) for s in CERTIFICATION_STATUSES),
                k.certification_expiry("issued"),
                k.certification_expiry("claimed"),
                k.credential_stats(),
                k.credential_analytics_cache(),
                k.overview_metrics_cache(),
            ],
        )

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
        group = self._groups.get(("cert",)) or self._remember(
            ("cert",), self._certification_group()
        )
        own = self.ctx.keys.training_certification(record.id)
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
        group = self._groups.get(("cert",)) or self._remember(
            ("cert",), self._certification_group()
        )
        own = self.ctx.keys.training_certification(cert_id)
        self.events.append(["U", group, own, cert_id, new_status, claim_time])

    def call(self) -> ScriptCall:
        """The script call: flat arguments for one event, a JSON document for more.

        Flat (one event): KEYS are the head keys, the group's keys, then the event's own key if
        it has one; ARGV is kind, "1"/"0" (an own key follows the group's), the number of group
        values, the group values, then the event's arguments.
        """
        if self._call is None:
            flat = len(self.events) == 1 and not self.bulk
            self._call = self._flat() if flat else self._document()
        return self._call

    def _flat(self) -> ScriptCall:
        kind, group, own, *args = self.events[0]
        if own is None:
            return ScriptCall(APPLY, group.flat_keys, (kind, "0", *group.flat_values, *args))
        keys = (*group.flat_keys, own)
        return ScriptCall(APPLY, keys, (kind, "1", *group.flat_values, *args))

    def _document(self) -> ScriptCall:
        keys = list(self._head())
        positions = {key: i for i, key in enumerate(keys, 1)}
        groups: list[tuple[list[int], list[str]]] = []
        group_index: dict[_Group, int] = {}

        def position(key: str) -> int:
            found = positions.get(key)
            if found is None:
                keys.append(key)
                found = positions[key] = len(keys)
            return found

        for event in self.events:
            group: _Group = event[1]
            index = group_index.get(group)
            if index is None:
                groups.append(([position(key) for key in group.keys], group.values))
                index = group_index[group] = len(groups)
            event[1] = index
            own = event[2]
            if own is None:
                event[2] = 0
            else:
                found = positions.get(own)
                if found is None:
                    keys.append(own)
                    found = positions[own] = len(keys)
                event[2] = found
        doc: list[Any] = [groups, self.events]
        if self._sequence is not None:
            key, number = self._sequence
            doc.append([position(key), number])
        # Encoded here, not while sending: an id that is not valid Unicode (a lone surrogate)
        # refuses this batch before it, or any batch after it, goes out. pydantic-core writes
        # the same compact UTF-8 JSON as json.dumps(ensure_ascii=False), about 3x faster.
        try:
            encoded_keys = tuple(key.encode() for key in keys)
        except UnicodeEncodeError as exc:
            raise self._unencodable() from exc
        try:
            text = to_json(doc)
        except PydanticSerializationError as exc:
            raise self._unencodable() from exc
        return ScriptCall(APPLY, encoded_keys, (text,))

    def _unencodable(self) -> InvalidInputError:
        reason = "surrogates not allowed"
        for index, event in enumerate(self.events):
            try:
                json.dumps(event[3:], ensure_ascii=False).encode()
            except UnicodeEncodeError as exc:
                return InvalidIdError(
                    f"event {self.first_index + index}: text that is not valid Unicode "
                    f"({exc.reason})"
                )
        return InvalidIdError(f"a key is not valid Unicode ({reason}); nothing was sent")


def _outcome(reply: Any) -> Outcome:
    if isinstance(reply, int):
        return reply == 1
    return script_error(str(reply))


def outcomes(replies: list[Any]) -> list[Outcome]:
    """The script's per-event replies as outcomes."""
    return [_outcome(reply) for reply in replies]


def request(events: EventBatch) -> Batch:
    """The round trip that applies a batch of events."""
    return Batch((events.call(),))


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


def apply_one(events: EventBatch) -> Op[bool]:
    """A batch of one event: its error raised, else whether it changed the store."""
    yield from zone.check_before_write(events.ctx)
    replies = yield request(events)
    outcome = _outcome(replies[0][0])
    if isinstance(outcome, TrainingAnalyticsError):
        raise outcome
    if outcome:
        yield from zone.remember_after_write(events.ctx)
    return outcome
