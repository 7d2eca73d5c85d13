"""``record_each``: events from outside applied in order, one outcome per event; a malformed
event is rejected with its index, never raised.

``record_many`` is for trusted bulk input: a malformed event raises before anything is sent.
Input from outside (the HTTP service's ``POST /events``, a file being imported) is different: a
bad line must not stop the good ones. ``record_each`` checks each event on its own, reports the
malformed ones as rejected with their index, and sends the others batch by batch through the same
write path as ``record_many`` (one atomic script call per batch; the script refuses events that
break a rule, such as an illegal status change, one by one).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from . import zone
from ._context import Context
from ._protocol import Await, Batch, Call, Op, ScriptCall, Submit
from ._writes import EventBatch, StreamSequence, outcomes, register_courses, request, settled
from .errors import InvalidInputError, StoreError
from .ingest import DEFAULT_BATCH_SIZE, check_batch_arguments, encode, forget_sequence
from .types import EventOutcome, EventOutcomes

Settled: TypeAlias = Literal["applied", "unchanged"]
_APPLIED: Final[Settled] = "applied"
_UNCHANGED: Final[Settled] = "unchanged"
Entry: TypeAlias = Settled | tuple[str, str] | None
"""One event's outcome as a tally keeps it: ``"applied"``, ``"unchanged"``, the rejection's
(error name, message), or None while the server has not answered."""


class _Row(TypedDict):
    index: int
    status: str
    error: str | None
    message: str | None


class _Report(TypedDict):
    results: list[_Row]
    applied: int
    unchanged: int
    rejected: int


# The JSON of ``EventOutcomes`` (field for field, in order, ``None`` included) from plain dicts.
_REPORT: Final = TypeAdapter(_Report)


@dataclass(frozen=True, slots=True)
class OutcomeReport:
    """What ``record_each_report`` did: the totals, and the JSON of the ``EventOutcomes``
    that ``record_each`` would return (the same bytes), built without a model per event."""

    applied: int
    unchanged: int
    rejected: int
    json: bytes


class OutcomeTally:
    """Outcomes by input position, the totals counted as they are filled in.

    Several calls can fill one tally (``import_records`` mixes runs of events with course
    records): positions continue from what it holds. An outcome is kept as a string or a pair
    (see ``Entry``): a model per event costs about 2 us, more than applying the event; they are
    built only by ``result``, and the HTTP reply (``report``) needs none.
    """

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.applied = self.unchanged = self.rejected = 0

    def reject(self, error: Exception) -> None:
        self.entries.append((type(error).__name__, str(error)))
        self.rejected += 1

    def done(self, changed: bool) -> None:
        """An outcome known at once: applied (changed) or unchanged."""
        if changed:
            self.entries.append(_APPLIED)
            self.applied += 1
        else:
            self.entries.append(_UNCHANGED)
            self.unchanged += 1

    def reject_reserved(self, index: int, error: Exception) -> None:
        """Refuse an event whose position was reserved (``pending``) before it was sent."""
        self.entries[index] = (type(error).__name__, str(error))
        self.rejected += 1

    def pending(self) -> int:
        """Reserve the next position for an outcome the server will give; returns it."""
        self.entries.append(None)
        return len(self.entries) - 1

    def settle(self, positions: list[int], replies: list[Any]) -> None:
        entries = self.entries
        if len(replies) != len(positions):
            raise StoreError(f"the server replied {len(replies)} outcomes for {len(positions)}")
        if replies.count(1) == len(replies):  # the usual batch: everything applied
            for index in positions:
                entries[index] = _APPLIED
            self.applied += len(replies)
            return
        for index, outcome in zip(positions, outcomes(replies), strict=True):
            if outcome is True:
                entries[index] = _APPLIED
                self.applied += 1
            elif outcome is False:
                entries[index] = _UNCHANGED
                self.unchanged += 1
            else:
                entries[index] = (type(outcome).__name__, str(outcome))
                self.rejected += 1

    def _settled(self) -> list[Settled | tuple[str, str]]:
        if None in self.entries:
            raise RuntimeError("an outcome was reserved and never settled")
        return self.entries  # type: ignore[return-value]

    def result(self) -> EventOutcomes:
        results = [
            EventOutcome(index=index, status=entry)
            if isinstance(entry, str)
            else EventOutcome(index=index, status="rejected", error=entry[0], message=entry[1])
            for index, entry in enumerate(self._settled())
        ]
        return EventOutcomes.model_construct(
            results=results, applied=self.applied, unchanged=self.unchanged, rejected=self.rejected
        )

    def report(self) -> OutcomeReport:
        rows: list[_Row] = [
            {"index": index, "status": entry, "error": None, "message": None}
            if isinstance(entry, str)
            else {"index": index, "status": "rejected", "error": entry[0], "message": entry[1]}
            for index, entry in enumerate(self._settled())
        ]
        report: _Report = {
            "results": rows,
            "applied": self.applied,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }
        return OutcomeReport(self.applied, self.unchanged, self.rejected, _REPORT.dump_json(report))


def _plain(event: Any) -> Any:
    """A read-only mapping as the dict ``encode`` validates."""
    if isinstance(event, Mapping) and not isinstance(event, dict):
        return dict(event)
    return event


def record_each(
    ctx: Context, events: Iterable[Any], *, batch_size: int = DEFAULT_BATCH_SIZE
) -> Op[EventOutcomes]:
    """Record events in order, ``batch_size`` per round trip; one outcome per event.

    Each event is a model (``EnrollmentEvent``...) or a mapping in its snake_case or camelCase
    JSON form with its ``kind``. A malformed one (not an event, unknown kind, invalid field, bad
    id or date) is rejected with its index and the error's class name and message, and writes
    nothing; the others are applied, batch after batch, each batch atomic. Events the server
    refuses (an illegal status change, a certificate that does not exist) are rejected the same
    way. Errors of the store itself (unreachable, not indexed, out of memory) still raise: the
    batches before the failed one were applied, and with several batches one more may have been
    (the next is sent while one is applied). Replays change nothing, so sending the same events
    again completes the work.
    """
    tally = OutcomeTally()
    yield from apply_each(ctx, events, tally, batch_size=batch_size)
    return tally.result()


def record_each_report(
    ctx: Context, events: Iterable[Any], *, batch_size: int = DEFAULT_BATCH_SIZE
) -> Op[OutcomeReport]:
    """``record_each``, its outcomes as the totals and the JSON of its ``EventOutcomes``
    (what the HTTP service replies), without building a model per event."""
    tally = OutcomeTally()
    yield from apply_each(ctx, events, tally, batch_size=batch_size)
    return tally.report()


def _unencodable(call: Call) -> InvalidInputError | None:
    """Why the call's text cannot be sent (a lone surrogate, which JSON's ``\\ud800`` escape
    lets through), or None. Checked here because the client would fail while sending, outside
    the operation, and the whole call with it."""
    try:
        for part in (*call.keys, *call.args) if isinstance(call, ScriptCall) else call.args:
            if isinstance(part, str):
                part.encode()
    except UnicodeEncodeError as exc:
        return InvalidInputError(f"text that is not valid Unicode ({exc.reason})")
    return None


class _Pending:
    """A batch being filled: the events as given (to encode again one by one if the batch
    cannot be sent as a whole) and the positions of their outcomes."""

    __slots__ = ("batch", "events", "positions")

    def __init__(self, ctx: Context) -> None:
        self.batch = EventBatch(ctx)
        self.events: list[Any] = []
        self.positions: list[int] = []


Sendable: TypeAlias = tuple[Batch, list[int], EventBatch]
"""A batch's round trip, the positions of its events' outcomes, and its events."""


def _unencodable_calls(batch: Batch) -> InvalidInputError | None:
    for call in batch.calls:
        problem = _unencodable(call)
        if problem is not None:
            return problem
    return None


def _sendable(
    ctx: Context, pending: _Pending, tally: OutcomeTally, sequence: StreamSequence | None
) -> Sendable:
    """The round trip for a batch, without the events whose text cannot be sent (each refused
    on its own; then the batch is encoded again from the others). With ``sequence`` (the
    stream's key and this batch's number), the batch runs only after the one numbered before
    it: pipelined batches keep their order even if the server loses its code meanwhile."""
    if sequence is not None:
        pending.batch.in_sequence(sequence)
    try:
        batch = request(pending.batch)
        problem = _unencodable_calls(batch)
    except InvalidInputError as exc:  # refused while encoding the whole call
        problem = exc
    if problem is None:
        return batch, pending.positions, pending.batch
    kept = _Pending(ctx)
    for event, position in zip(pending.events, pending.positions, strict=True):
        alone = EventBatch(ctx)
        encode(alone, event)
        try:
            error = _unencodable_calls(request(alone))
        except InvalidInputError as exc:
            error = exc
        if error is not None:
            tally.reject_reserved(position, error)
            continue
        encode(kept.batch, event)
        kept.positions.append(position)
    if not kept.positions:
        return Batch(()), [], kept.batch
    if sequence is not None:
        kept.batch.in_sequence(sequence)
    return request(kept.batch), kept.positions, kept.batch


def apply_each(
    ctx: Context, events: Iterable[Any], tally: OutcomeTally, *, batch_size: int
) -> Op[None]:
    """``record_each`` into an existing tally: the events' outcomes follow what it holds.

    When there is more than one batch, they are submitted without waiting (as
    ``record_many(stream=True)`` does), one on the server while the next is encoded; a single
    batch (the usual HTTP request) is one plain round trip. Every batch is acknowledged before
    this returns, so what the caller sends next applies after them.
    """
    check_batch_arguments(events, batch_size)
    yield from zone.check_before_write(ctx)
    applied_before = tally.applied
    # Batches that may share the connection with others carry a number in this stream (see
    # _sendable); only batches actually sent are numbered, so the numbers have no gaps.
    stream = StreamSequence(ctx.keys, uuid.uuid4().hex)
    numbered = 0

    def next_number(sendable: Sendable) -> Sendable:
        nonlocal numbered
        if sendable[1]:
            numbered += 1
            stream.advance(sendable[2])
        return sendable

    current = _Pending(ctx)
    # A full batch waits here until another event proves it is not the only one.
    full: Sendable | None = None
    in_flight: deque[tuple[Any, list[int], EventBatch]] = deque()
    for event in events:
        plain = _plain(event)
        try:
            # encode appends to the batch only once the event is valid, so a refusal leaves
            # the batch as it was.
            encode(current.batch, plain)
        except InvalidInputError as exc:
            tally.reject(exc)
            continue
        current.events.append(plain)
        current.positions.append(tally.pending())
        if full is not None:
            if full[1]:
                yield from register_courses(full[2])
                in_flight.append(((yield Submit(full[0])), full[1], full[2]))
            full = None
            if len(in_flight) > 1:
                ticket, done, sent = in_flight.popleft()
                replies = yield Await(ticket)
                tally.settle(done, (yield from settled(sent, replies)))
        if current.batch.size >= batch_size:
            sendable = _sendable(ctx, current, tally, stream)
            full, current = next_number(sendable), _Pending(ctx)
    last = full
    if last is None and current.batch.size:
        sequence = stream if numbered else None
        last = next_number(_sendable(ctx, current, tally, sequence))
    if last is not None and last[1]:
        yield from register_courses(last[2])
        if not in_flight:  # a single batch: one plain round trip
            replies = yield last[0]
            tally.settle(last[1], (yield from settled(last[2], replies)))
        else:
            in_flight.append(((yield Submit(last[0])), last[1], last[2]))
    while in_flight:
        ticket, done, sent = in_flight.popleft()
        replies = yield Await(ticket)
        tally.settle(done, (yield from settled(sent, replies)))
    if numbered:
        yield from forget_sequence(stream)
    if tally.applied > applied_before:
        yield from zone.remember_after_write(ctx)
