"""Bulk ingest: many events, one round trip per batch, the same script as single events."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ._context import Context
from ._protocol import Await, Op, Submit
from ._writes import EventBatch, first_reply, outcomes, request, send
from .errors import InvalidInputError
from .types import (
    BatchResult,
    CertificationIssuedEvent,
    CertificationStatusEvent,
    CompletionEvent,
    EnrollmentEvent,
    ModuleCompletionEvent,
    ModuleStartEvent,
    ProgressEvent,
    RejectedEvent,
    TrainingEvent,
)

DEFAULT_BATCH_SIZE = 1000
_EVENT = TypeAdapter[Any](TrainingEvent)


def encode(events: EventBatch, event: Any) -> None:
    """Add one event (a model or its dict form) to a batch; InvalidInputError if malformed."""
    if isinstance(event, dict):
        try:
            event = _EVENT.validate_python(event)
        except ValidationError as exc:
            raise InvalidInputError(f"invalid event: {exc}") from exc
    match event:
        case EnrollmentEvent():
            events.enrollment(event.user_id, event.course_id, event.at)
        case CompletionEvent():
            events.completion(event.user_id, event.course_id, event.at)
        case ModuleStartEvent():
            events.module_start(event.user_id, event.course_id, event.module_id)
        case ModuleCompletionEvent():
            events.module_completion(event.user_id, event.course_id, event.module_id)
        case ProgressEvent():
            events.progress(event.progress)
        case CertificationIssuedEvent():
            events.certification_issued(event.certification, event.at)
        case CertificationStatusEvent():
            events.certification_status(event.cert_id, event.new_status, event.claimed_at, event.at)
        case _:
            raise InvalidInputError(f"not a training event: {event!r}")


class _Tally:
    """Outcomes of the events so far, in plain integers: a pydantic field assignment per event
    would cost more than the event itself."""

    def __init__(self) -> None:
        self.applied = self.unchanged = self.seen = 0
        self.rejected: list[RejectedEvent] = []

    def add(self, replies: list[Any]) -> None:
        applied, unchanged = replies.count(1), replies.count(0)
        if applied + unchanged == len(replies):  # no refusals: the usual batch, counted in C
            self.applied += applied
            self.unchanged += unchanged
            self.seen += len(replies)
            return
        for position, outcome in enumerate(outcomes(replies)):
            if outcome is True:
                self.applied += 1
            elif outcome is False:
                self.unchanged += 1
            else:
                self.rejected.append(
                    RejectedEvent(
                        index=self.seen + position,
                        error=type(outcome).__name__,
                        message=str(outcome),
                    )
                )
        self.seen += len(replies)

    def result(self) -> BatchResult:
        return BatchResult(applied=self.applied, unchanged=self.unchanged, rejected=self.rejected)


def record_many(
    ctx: Context,
    events: Iterable[Any],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    stream: bool = False,
) -> Op[BatchResult]:
    """Record events in order, ``batch_size`` per round trip, each batch atomic.

    Events the server refuses (an illegal status change, say) are listed in the result's
    ``rejected`` and wrote nothing; the others are applied.

    By default every event is checked before anything is sent: a malformed one raises
    InvalidInputError and nothing is written. With ``stream=True`` (for large imports) events are
    checked and sent batch by batch, and the next batch is prepared while the server applies the
    previous one; a malformed event then raises InvalidInputError before its own batch is sent,
    after the batches before it were applied (the error says how many events that was).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be an integer of at least 1, got {batch_size!r}")
    if not isinstance(events, Iterable):
        raise InvalidInputError(f"events must be an iterable of events, got {events!r:.80}")
    tally = _Tally()
    if not stream:
        batches = list(_batches(ctx, events, batch_size))
        for events_batch in batches:
            tally.add((yield from send(events_batch)))
        return tally.result()
    in_flight: deque[Any] = deque()
    try:
        for events_batch in _batches(ctx, events, batch_size):
            in_flight.append((yield Submit(request(events_batch))))
            if len(in_flight) > 1:  # one batch on the server while the next is encoded
                tally.add(first_reply((yield Await(in_flight.popleft()))))
    except InvalidInputError as exc:
        while in_flight:
            tally.add(first_reply((yield Await(in_flight.popleft()))))
        raise type(exc)(f"{exc} ({tally.seen} earlier events were sent and applied)") from exc
    while in_flight:
        tally.add(first_reply((yield Await(in_flight.popleft()))))
    return tally.result()


def _batches(ctx: Context, events: Iterable[Any], batch_size: int) -> Iterator[EventBatch]:
    current = EventBatch(ctx)
    for index, event in enumerate(events):
        try:
            encode(current, event)
        except InvalidInputError as exc:
            raise type(exc)(f"event {index}: {exc}") from exc
        if current.size >= batch_size:
            yield current
            current = EventBatch(ctx)
    if current.size:
        yield current
