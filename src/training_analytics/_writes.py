"""Every write goes through one server-side function (``lua/apply.lua`` and the handlers it is
assembled with): this module encodes events for it.

An event is validated and turned into (kind, keys, args) in Python; the function applies a batch
of them atomically and replies per event. A single call such as ``record_enrollment`` is a batch
of one, sent as plain arguments; ``record_many`` sends many per round trip in one JSON document,
with keys deduplicated and referred to by position, so a batch of 1,000 enrolments in one course
sends each shared key once.

In the cluster layout (``TrainingKeys(layout="cluster")``) a call may touch one hash tag only: a
batch becomes one call per tag (a course, a certificate bucket), each a document with that tag's
head keys, and the replies are put back in event order (:meth:`EventBatch.script_replies`).
Keys the cluster layout lacks (global day counters and series, caches) go out as position 0.
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
from ._protocol import Batch, Command, Op, ScriptCall, load_script
from ._time import day_bucket, epoch_ms, from_epoch_ms, instant_ms, normalize_timestamp, to_iso
from ._wire import script_error
from .errors import InvalidIdError, InvalidInputError, InvalidStatusError, TrainingAnalyticsError
from .keys import CERTIFICATION_STATUSES, TrainingKeys, check_id
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

    def __init__(
        self, head: tuple[str, ...], keys: Sequence[str | None], values: Sequence[str] = ()
    ):
        self.keys = tuple(keys)
        self.values = list(values)
        # What a batch of one event sends (see EventBatch.call).
        self.flat_keys = (*head, *keys)  # never holds None: the cluster layout sends no flat call
        self.flat_values = (str(len(values)), *values)


# The context's memo holds groups and day buckets; past this many entries it starts over (a
# long-lived process writing to many courses over many days must not grow without bound).
_MEMO_LIMIT = 20_000
_QUARTER_MS = 900_000
_DAY_MS = 86_400_000
_UTC_KEYS = frozenset({"UTC", "Etc/UTC"})
# Where the fields the course averages read sit among a progress event's values.
_SCORE, _STARTED, _COMPLETED = (PROGRESS_FIELDS.index(name) for name in PROGRESS_FIGURE_FIELDS)


class StreamSequence:
    """The order of one streamed import's calls (see ``lua/apply.lua``): each call names its
    stream's counter key and the number it must follow. Single layout: one key, batch after
    batch. Cluster layout: one key per hash tag, each tag's calls numbered on their own (a
    batch is one call per tag it touches), so a node that lost its code refuses that tag's later
    calls until the failed one is sent again."""

    __slots__ = ("_keys", "keys", "sent", "token")

    def __init__(self, keys: TrainingKeys, token: str) -> None:
        self.keys, self.token = keys, token
        self.sent: dict[str | None, int] = {}
        """Calls sent so far, per tag (None: the single layout's one counter)."""
        self._keys: dict[str | None, str] = {}

    def key(self, tag: str | None) -> str:
        found = self._keys.get(tag)
        if found is None:
            found = self._keys[tag] = self.keys.ingest_sequence(self.token, tag)
        return found

    def next(self, tag: str | None) -> tuple[str, int]:
        """The counter key and number of the next call of ``tag``."""
        return self.key(tag), self.sent.get(tag, 0) + 1

    def advance(self, events: EventBatch) -> None:
        """``events`` is sent: the next batch's calls follow it."""
        for tag in events.tags():
            self.sent[tag] = self.sent.get(tag, 0) + 1

    def counter_keys(self) -> list[str]:
        """The keys to delete when the stream ends."""
        if not self.keys.cluster:
            return [self.key(None)]
        return [self.key(tag) for tag in self.sent]


class EventBatch:
    """Events encoded for one ``apply.lua`` call (layouts: the comments atop ``lua/*.lua``).

    Keys are sent once each and referred to by position; a group's keys and values are sent
    once per batch. A batch of one event goes out flat, as plain arguments (see ``call``): a
    single write should not pay for a JSON document.
    """

    __slots__ = (
        "_call",
        "_calls",
        "_cluster",
        "_days",
        "_groups",
        "_order",
        "_probed",
        "_sequence",
        "_tags",
        "_utc",
        "_utc_days",
        "bulk",
        "ctx",
        "events",
        "first_index",
        "registered_now",
        "unregistered",
    )

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # Per event: [kind, group, own key or None, args...]; call() turns the group and the own
        # key into positions.
        self.events: list[list[Any]] = []
        memo = ctx.memo
        self._groups: dict[tuple[str, ...], _Group] = memo.setdefault("groups", {})
        self._days: dict[int, str] = memo.setdefault("days", {})
        self._utc_days: dict[int, str] = memo.setdefault("utc_days", {})
        self._utc = getattr(ctx.tz, "key", None) in _UTC_KEYS
        self._call: ScriptCall | None = None
        self._calls: tuple[ScriptCall, ...] | None = None
        self._sequence: StreamSequence | None = None
        self._cluster = ctx.keys.cluster
        # Cluster layout: per event its hash tag; per call the events it carries (set by calls()).
        self._tags: list[str] = []
        self._order: list[list[int]] = []
        # Cluster layout: the courses whose marker this batch's round trip asks before its
        # calls (see ``probes``), those ``register_courses`` added for it, and those found
        # without a marker, to register again once the replies are in (``settled``).
        self._probed: list[str] = []
        self.registered_now: frozenset[str] = frozenset()
        self.unregistered: list[str] = []
        self.first_index = 0
        """The position of this batch's first event in its import (for error messages)."""
        self.bulk = False
        """Part of a ``record_many``: sent as a document even if it holds one event, so that it
        is encoded (and an unencodable id found) before any batch is sent."""

    def in_sequence(self, stream: StreamSequence) -> None:
        """Make this batch's calls run only after the calls ``stream`` sent before (see
        ``lua/apply.lua``): pipelined batches then apply in submission order. The caller
        calls ``stream.advance(batch)`` once the batch is sent."""
        self._sequence = stream
        self.bulk = True  # the sequence travels in the document

    def tags(self) -> list[str | None]:
        """The hash tags of this batch's calls, in call order (single layout: [None])."""
        if not self._cluster:
            return [None]
        return list(dict.fromkeys(self._tags))

    @property
    def size(self) -> int:
        return len(self.events)

    def _head(self) -> tuple[str, ...]:
        """The keys every call's KEYS open with: the index marker, the base keys, then the
        store version."""
        if self._cluster:
            return ()  # per tag: _tag_head (a cluster call is always a document)
        head: tuple[str, ...] | None = self.ctx.memo.get("head")
        if head is None:
            k = self.ctx.keys
            head = self.ctx.memo["head"] = (
                k.index_marker(),
                *base_keys(self.ctx),
                k.store_version(),
            )
        return head

    def _tag_head(self, tag: str) -> tuple[str, ...]:
        """Cluster layout: the head keys of a call of ``tag`` (a course id or a bucket tag): its
        marker, three of its base keys (present once anything was written there), its version."""
        heads: dict[str, tuple[str, ...]] = self.ctx.memo.setdefault("heads", {})
        head = heads.get(tag)
        if head is None:
            if len(heads) >= _MEMO_LIMIT:
                heads.clear()
            k = self.ctx.keys
            if tag.startswith(":cert:"):
                base = (
                    k.all_training_certifications(tag),
                    k.certifications_by_status("issued", tag),
                    k.certifications_by_status("claimed", tag),
                )
            else:
                base = (
                    k.course_enrollments(tag),
                    k.course_completions(tag),
                    k.course_enrollment_timeseries(tag),
                )
            head = heads[tag] = (k.index_marker(tag), *base, k.store_version(tag))
        return head

    def _add(self, event: list[Any], tag: str) -> None:
        self.events.append(event)
        if self._cluster:
            self._tags.append(tag)

    def _remember(self, name: tuple[str, ...], group: _Group) -> _Group:
        if len(self._groups) >= _MEMO_LIMIT:
            self._groups.clear()
        self._groups[name] = group
        return group

    def _moment(self, at: datetime | str | None) -> tuple[str, str]:
        """(day in the configured zone, epoch ms as text) of an event time."""
        ms = epoch_ms(self.ctx.now()) if at is None else instant_ms(at, "at")
        if self._utc:
            # UTC (the default): a day is 86,400,000 ms, one memo entry per day. (Per quarter
            # hour, a history spanning months holds more quarters than the memo keeps, and
            # each new quarter costs two time zone conversions.)
            number = ms // _DAY_MS
            day = self._utc_days.get(number)
            if day is None:
                if len(self._utc_days) >= _MEMO_LIMIT:
                    self._utc_days.clear()
                day = self._utc_days[number] = day_bucket(
                    from_epoch_ms(number * _DAY_MS), self.ctx.tz
                )
            return day, str(ms)
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
        if self._cluster:
            return _Group(
                (),
                [
                    k.course_enrollments(course_id),
                    None,
                    k.course_enrollment_timeseries(course_id),
                    k.course_enrollments_by_day(course_id),
                    k.course_stats(course_id),
                    None,
                    None,
                    k.course_unenrolled_progress(course_id),
                ],
                (course_id, day),
            )
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
        if self._cluster:
            own: list[str | None] = [
                k.course_completions(course_id),
                None,
                k.course_completion_timeseries(course_id),
                k.course_completions_by_day(course_id),
            ]
        else:
            own = [
                k.course_completions(course_id),
                k.completion_by_date(day),
                k.completion_timeseries(),
                k.course_completions_by_day(course_id),
            ]
        return _Group(self._head(), [*enrollment.keys, *own], enrollment.values)

    # The checked_ encoders take a user id already checked (the import's canonical lines);
    # the course and module ids are checked where their keys are built, once per group.

    def enrollment(self, user_id: str, course_id: str, at: datetime | str | None) -> None:
        self.checked_enrollment(check_id(user_id, "user id"), course_id, at)

    def checked_enrollment(self, user_id: str, course_id: str, at: datetime | str | None) -> None:
        day, ms = self._moment(at)
        name = ("E", course_id, day)
        group = self._groups.get(name) or self._remember(
            name, self._enrollment_group(course_id, day)
        )
        self._add(["E", group, None, user_id, ms], course_id)

    def completion(self, user_id: str, course_id: str, at: datetime | str | None) -> None:
        self.checked_completion(check_id(user_id, "user id"), course_id, at)

    def checked_completion(self, user_id: str, course_id: str, at: datetime | str | None) -> None:
        day, ms = self._moment(at)
        name = ("C", course_id, day)
        group = self._groups.get(name) or self._remember(
            name, self._completion_group(course_id, day)
        )
        self._add(["C", group, None, user_id, ms], course_id)

    def _module_start_group(self, course_id: str, module_id: str) -> _Group:
        k = self.ctx.keys
        cache = None if self._cluster else k.course_analytics_cache(course_id)
        return _Group(self._head(), [k.module_enrollments(course_id, module_id), cache])

    def _module_completion_group(self, course_id: str, module_id: str) -> _Group:
        start = self._module_start_group(course_id, module_id)
        return _Group(
            self._head(), [*start.keys, self.ctx.keys.module_completions(course_id, module_id)]
        )

    def module_start(self, user_id: str, course_id: str, module_id: str) -> None:
        self.checked_module_start(check_id(user_id, "user id"), course_id, module_id)

    def checked_module_start(self, user_id: str, course_id: str, module_id: str) -> None:
        name = ("S", course_id, module_id)
        group = self._groups.get(name) or self._remember(
            name, self._module_start_group(course_id, module_id)
        )
        self._add(["S", group, None, user_id], course_id)

    def module_completion(self, user_id: str, course_id: str, module_id: str) -> None:
        self.checked_module_completion(check_id(user_id, "user id"), course_id, module_id)

    def checked_module_completion(self, user_id: str, course_id: str, module_id: str) -> None:
        name = ("M", course_id, module_id)
        group = self._groups.get(name) or self._remember(
            name, self._module_completion_group(course_id, module_id)
        )
        self._add(["M", group, None, user_id], course_id)

    def _progress_group(self, course_id: str) -> _Group:
        k = self.ctx.keys
        return _Group(
            self._head(),
            [
                k.course_enrollments(course_id),
                k.course_stats(course_id),
                None if self._cluster else k.course_analytics_cache(course_id),
                k.course_unenrolled_progress(course_id),
            ],
        )

    def progress(self, progress: EnhancedTrainingProgress) -> None:
        self.progress_values(progress.user_id, progress.course_id, progress_to_fields(progress))

    def progress_values(self, user: str, course: str, values: list[str]) -> None:
        """A progress save already validated: its hash values in PROGRESS_FIELDS order."""
        # The new figures travel with the event: parsing them is cheaper here than in Lua.
        milli, time_ms = progress_figures(values[_SCORE], values[_STARTED], values[_COMPLETED])
        group = self._groups.get(("P", course)) or self._remember(
            ("P", course), self._progress_group(course)
        )
        own = self.ctx.keys.user_course_progress(user, course)
        self._add(
            [
                "P",
                group,
                own,
                user,
                *values,
                "" if milli is None else str(milli),
                "" if time_ms is None else str(time_ms),
            ],
            course,
        )

    def _certification_group(self, bucket: str | None) -> _Group:
        k = self.ctx.keys
        if bucket is not None:  # the cluster layout: the certificate's bucket's keys
            return _Group(
                (),
                [
                    k.all_training_certifications(bucket),
                    *(k.certifications_by_status(s, bucket) for s in CERTIFICATION_STATUSES),
                    k.certification_expiry("issued", bucket),
                    k.certification_expiry("claimed", bucket),
                    k.credential_stats(bucket),
                    None,
                    None,
                ],
            )
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
        self.certification_fields(record.id, certification_to_fields(record))

    def certification_fields(self, cert_id: str, fields: dict[str, str]) -> None:
        """A certificate issue already validated: its hash fields (certification_to_fields)."""
        pairs: list[str] = []
        for name, value in fields.items():
            pairs += [name, value]
        group, bucket = self._certificate_group(cert_id)
        own = self.ctx.keys.training_certification(cert_id)
        self._add(["I", group, own, cert_id, *pairs], bucket)

    def _certificate_group(self, cert_id: str) -> tuple[_Group, str]:
        """The group of a certificate's keys, and its tag (its bucket; "" single layout)."""
        bucket = self.ctx.keys.certification_bucket(cert_id) if self._cluster else None
        name = ("cert", bucket or "")
        group = self._groups.get(name) or self._remember(name, self._certification_group(bucket))
        return group, bucket or ""

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
        group, bucket = self._certificate_group(cert_id)
        own = self.ctx.keys.training_certification(cert_id)
        self._add(["U", group, own, cert_id, new_status, claim_time], bucket)

    def calls(self) -> tuple[ScriptCall, ...]:
        """The script calls: one (see ``call``), or in the cluster layout one per hash tag,
        in the order of each tag's first event, each a document with that tag's head keys."""
        if self._calls is None:
            if not self._cluster:
                self._calls = (self.call(),)
            else:
                by_tag: dict[str, list[int]] = {}
                for index, tag in enumerate(self._tags):
                    found = by_tag.get(tag)
                    if found is None:
                        found = by_tag[tag] = []
                    found.append(index)
                self._order = list(by_tag.values())
                sequence = self._sequence
                self._calls = tuple(
                    self._document(
                        [self.events[i] for i in indices],
                        self._tag_head(tag),
                        None if sequence is None else sequence.next(tag),
                    )
                    for tag, indices in by_tag.items()
                )
        return self._calls

    def probes(self) -> tuple[Command, ...]:
        """Cluster layout: an ``EXISTS`` of the marker of each course of this batch that this
        process registered before, to go ahead of the calls in the same round trip (each to
        its course's node, before its call there). A course whose marker is missing was
        emptied since it was registered (the store flushed, or the course's keys removed), so
        the registry may have lost it too: ``settled`` adds it again. Nothing otherwise."""
        if not self._cluster:
            return ()
        known: set[str] | None = self.ctx.memo.get("registered")
        if not known:
            return ()
        self._probed = [
            tag
            for tag in self.tags()
            if tag is not None
            and tag in known
            and tag not in self.registered_now
            and not tag.startswith(":")
        ]
        return tuple(Command(("EXISTS", self._tag_head(tag)[0])) for tag in self._probed)

    def script_replies(self, replies: list[Any]) -> list[Any]:
        """The per-event replies, in event order, within the replies of ``request``'s batch
        (the probes' replies first: see ``probes``)."""
        if not self._cluster:
            result: list[Any] = replies[0]
            return result
        probed = len(self._probed)
        if probed:
            self.unregistered = [
                tag for tag, found in zip(self._probed, replies[:probed], strict=True) if found != 1
            ]
            replies = replies[probed:]
        merged: list[Any] = [None] * len(self.events)
        for indices, reply in zip(self._order, replies, strict=True):
            for index, outcome in zip(indices, reply, strict=True):
                merged[index] = outcome
        return merged

    def call(self) -> ScriptCall:
        """The script call: flat arguments for one event, a JSON document for more.

        Flat (one event): KEYS are the head keys, the group's keys, then the event's own key if
        it has one; ARGV is kind, "1"/"0" (an own key follows the group's), the number of group
        values, the group values, then the event's arguments.
        """
        if self._cluster:
            raise TypeError("a cluster layout's batch is one call per hash tag: use calls()")
        if self._call is None:
            flat = len(self.events) == 1 and not self.bulk
            if flat:
                self._call = self._flat()
            else:
                sequence = None if self._sequence is None else self._sequence.next(None)
                self._call = self._document(self.events, self._head(), sequence)
        return self._call

    def _flat(self) -> ScriptCall:
        kind, group, own, *args = self.events[0]
        if own is None:
            return ScriptCall(APPLY, group.flat_keys, (kind, "0", *group.flat_values, *args))
        keys = (*group.flat_keys, own)
        return ScriptCall(APPLY, keys, (kind, "1", *group.flat_values, *args))

    def _document(
        self, events: list[list[Any]], head: tuple[str, ...], sequence: tuple[str, int] | None
    ) -> ScriptCall:
        keys = list(head)
        positions: dict[str | None, int] = {key: i for i, key in enumerate(keys, 1)}
        positions[None] = 0  # a key the layout lacks: KEYS[0], nil in Lua
        groups: list[tuple[list[int], list[str]]] = []
        group_index: dict[_Group, int] = {}

        def position(key: str | None) -> int:
            found = positions.get(key)
            if found is None:
                keys.append(key)  # type: ignore[arg-type]  # None is always found
                found = positions[key] = len(keys)
            return found

        for event in events:
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
        doc: list[Any] = [groups, events]
        if sequence is not None:
            key, number = sequence
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
    """The round trip that applies a batch of events (its replies go to ``settled``)."""
    return Batch((*events.probes(), *events.calls()))


def register_courses(events: EventBatch) -> Op[None]:
    """Cluster layout: add the batch's courses to the course registry (``training:agg:courses:
    {:meta}``, what sums over courses run over) before their first write, one SADD for those
    this process has not registered yet. The registry is in another slot than any course, so
    it cannot be written in the course's call: written first, it is always a superset of the
    courses with data (a crash in between leaves a course with nothing, which sums to zero).
    Nothing in the single layout."""
    if not events.ctx.keys.cluster:
        return
    known: set[str] = events.ctx.memo.setdefault("registered", set())
    new = [
        tag
        for tag in events.tags()
        if tag is not None and tag not in known and not tag.startswith(":")
    ]
    if not new:
        return
    yield Batch((Command(("SADD", events.ctx.keys.course_registry(), *new)),))
    if len(known) >= _MEMO_LIMIT:
        known.clear()
    known.update(new)
    events.registered_now = frozenset(new)


def settled(events: EventBatch, replies: list[Any]) -> Op[list[Any]]:
    """The per-event replies of ``request(events)``'s round trip, in event order. On the
    cluster layout, courses this process had registered but found without their marker are
    added to the registry again first (one SADD): the store was emptied under this process,
    which would otherwise never register them again. Between that write and this SADD a
    global read may miss the course, as if it had read just before the write."""
    results = events.script_replies(replies)
    if events.unregistered:
        yield Batch((Command(("SADD", events.ctx.keys.course_registry(), *events.unregistered)),))
        events.unregistered = []
    return results


def send(events: EventBatch) -> Op[list[Any]]:
    """Apply a batch (one round trip); the script's reply, one entry per event."""
    if events.size == 0:
        return []
    yield from register_courses(events)
    replies = yield request(events)
    return (yield from settled(events, replies))


def apply_one(events: EventBatch) -> Op[bool]:
    """A batch of one event: its error raised, else whether it changed the store."""
    yield from zone.check_before_write(events.ctx)
    yield from register_courses(events)
    replies = yield request(events)
    outcome = _outcome((yield from settled(events, replies))[0])
    if isinstance(outcome, TrainingAnalyticsError):
        raise outcome
    if outcome:
        yield from zone.remember_after_write(events.ctx)
    return outcome
