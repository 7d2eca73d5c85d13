"""Bulk ingest: many events, one round trip per batch, the same script as single events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ._context import Context
from ._protocol import Op
from ._writes import EventBatch, apply
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


def record_many(
    ctx: Context, events: Iterable[Any], *, batch_size: int = DEFAULT_BATCH_SIZE
) -> Op[BatchResult]:
    """Record events in order, ``batch_size`` per round trip, each batch atomic.

    Every event is checked before anything is sent: a malformed one raises InvalidInputError and
    nothing is written. Events the server refuses (an illegal status change, say) are listed in
    the result's ``rejected`` and wrote nothing; the others are applied.
    """
    if batch_size < 1:
        raise InvalidInputError("batch_size must be at least 1")
    batches: list[EventBatch] = []
    current = EventBatch(ctx)
    for index, event in enumerate(events):
        try:
            encode(current, event)
        except InvalidInputError as exc:
            raise type(exc)(f"event {index}: {exc}") from exc
        if current.size >= batch_size:
            batches.append(current)
            current = EventBatch(ctx)
    if current.size:
        batches.append(current)
    # Plain counters: assigning to a pydantic model field per event would cost more than the event.
    applied = unchanged = offset = 0
    rejected: list[RejectedEvent] = []
    for events_batch in batches:
        outcomes = yield from apply(events_batch)
        for position, outcome in enumerate(outcomes):
            if outcome is True:
                applied += 1
            elif outcome is False:
                unchanged += 1
            else:
                rejected.append(
                    RejectedEvent(
                        index=offset + position,
                        error=type(outcome).__name__,
                        message=str(outcome),
                    )
                )
        offset += events_batch.size
    return BatchResult(applied=applied, unchanged=unchanged, rejected=rejected)
