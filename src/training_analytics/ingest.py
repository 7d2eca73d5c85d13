"""Bulk ingest: many events, one round trip per batch, the same script as single events."""

from __future__ import annotations

import contextlib
import uuid
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from typing import Any

from pydantic import TypeAdapter, ValidationError

from . import zone
from ._canonical import CanonicalEvent, CanonicalProgress, certification_values, progress_values
from ._context import Context
from ._protocol import Await, Op, Submit, cmd, pipeline, single
from ._writes import (
    EventBatch,
    StreamSequence,
    outcomes,
    register_courses,
    request,
    settled,
)
from .errors import (
    BatchAbortedError,
    InvalidInputError,
    StoreUnavailableError,
    TrainingAnalyticsError,
)
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
    kind = type(event)
    if kind is CanonicalEvent:  # a line the import parsed the fast way: its encoder call
        event.encoder(events, *event.args)
        return
    if kind is CanonicalProgress:  # a progress line the import parsed the fast way
        events.progress_values(*event)
        return
    if isinstance(event, dict):
        if event.get("kind") == "progress":
            # A save in the stored form skips the models (the bulk of an import's progress).
            raw = event.get("progress")
            canonical = progress_values(raw) if isinstance(raw, dict) else None
            if canonical is not None:
                events.progress_values(*canonical)
                return
        elif event.get("kind") == "certification_issued":
            raw = event.get("certification")
            issued = certification_values(raw) if isinstance(raw, dict) else None
            if issued is not None:
                events.certification_fields(*issued)
                return
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


def check_batch_arguments(events: object, batch_size: object) -> None:
    """InvalidInputError unless ``events`` is an iterable of events (not text or a single
    mapping) and ``batch_size`` an integer of at least 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    if isinstance(events, str | bytes | dict) or not isinstance(events, Iterable):
        kind = type(events).__name__
        raise InvalidInputError(f"events must be an iterable of events, not {kind}")


def record_many(
    ctx: Context,
    events: Iterable[Any],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    stream: bool = False,
) -> Op[BatchResult]:
    """Record events in order, ``batch_size`` per round trip, each batch atomic.

    Events the server refuses one by one (an illegal status change, an unknown certificate, a key
    another program wrote with another type) are listed in the result's ``rejected`` and wrote
    nothing; the others are applied.

    By default every event is checked and encoded before anything is sent: a malformed one
    (or one holding text that is not valid Unicode) raises InvalidInputError and nothing is
    written. With ``stream=True`` (for large imports) events are checked, encoded and sent batch
    by batch, the next batch prepared while the server applies the previous one; a malformed
    event then raises before its own batch is sent, after the batches before it were applied.

    If the import stops before its end for any reason (bad input when streaming, the server at
    its maxmemory, a lost connection, code the server refuses to load), the error raised is a
    :class:`~training_analytics.errors.BatchAbortedError` that is also an instance of the error
    that stopped it. It says how far the import got: events before ``applied`` went through,
    events from ``first_unapplied`` on were not applied (batches are atomic, and a streamed batch
    runs only after the one before it did, so nothing after a failed batch is applied), and
    ``in_doubt`` counts those in between: only after a lost connection, when the server could
    not be asked afterwards which batches it applied. Resending from ``first_unapplied`` (or from
    ``applied``: replays change nothing) completes the import.
    """
    check_batch_arguments(events, batch_size)
    yield from zone.check_before_write(ctx)
    tally = _Tally()
    if not stream:
        batches = list(_batches(ctx, events, batch_size))
        # Every batch encoded before the first is sent.
        requests = [request(events_batch) for events_batch in batches]
        for events_batch, batch in zip(batches, requests, strict=True):
            try:
                yield from register_courses(events_batch)
                replies = yield batch
            except TrainingAnalyticsError as exc:
                doubt = events_batch.size if isinstance(exc, StoreUnavailableError) else 0
                raise _aborted(exc, tally, tally.seen + doubt) from exc
            tally.add((yield from settled(events_batch, replies)))
        if tally.applied:
            yield from zone.remember_after_write(ctx)
        return tally.result()
    return (yield from _stream(ctx, events, batch_size, tally))


def _stream(ctx: Context, events: Iterable[Any], batch_size: int, tally: _Tally) -> Op[BatchResult]:
    stream = StreamSequence(ctx.keys, uuid.uuid4().hex)
    in_flight: deque[tuple[Any, EventBatch]] = deque()  # tickets
    ends = [0]  # events submitted through batch n, at position n
    failure: TrainingAnalyticsError | None = None
    batches = _batches(ctx, events, batch_size)
    while failure is None:
        try:
            events_batch = next(batches, None)
            if events_batch is None:
                break
            events_batch.in_sequence(stream)
            batch = request(events_batch)
        except InvalidInputError as exc:
            failure = exc
            break
        stream.advance(events_batch)
        try:
            yield from register_courses(events_batch)
            in_flight.append(((yield Submit(batch)), events_batch))
        except TrainingAnalyticsError as exc:
            failure = exc
        ends.append(ends[-1] + events_batch.size)
        # One batch on the server while the next is encoded.
        if failure is None and len(in_flight) > 1:
            failure = yield from _collect(in_flight, tally)
    while failure is None and in_flight:
        failure = yield from _collect(in_flight, tally)
    if isinstance(failure, InvalidInputError):
        # The batches before the malformed event were sent: their outcomes count (unless one of
        # them fails: then it is what stopped the import).
        while in_flight:
            refused = yield from _collect(in_flight, tally)
            if refused is not None:
                failure = refused
                break
    if failure is None:
        yield from forget_sequence(stream)
        if tally.applied:
            yield from zone.remember_after_write(ctx)
        return tally.result()
    applied = tally.seen
    unapplied = ends[-1] if isinstance(failure, StoreUnavailableError) else applied
    if unapplied > applied and not ctx.keys.cluster:
        # The connection was lost with batches in flight: ask the server how far it got. (On a
        # cluster a batch is one call per tag, on several nodes: its calls may have been applied
        # on some and not others, so the events in doubt stay in doubt.)
        try:
            last = yield from single("GET", stream.key(None))
        except TrainingAnalyticsError:
            pass
        else:
            applied = unapplied = max(applied, ends[min(int(last or 0), len(ends) - 1)])
    yield from forget_sequence(stream)
    raise _aborted(failure, tally, unapplied, applied) from failure


def _collect(
    in_flight: deque[tuple[Any, EventBatch]], tally: _Tally
) -> Generator[Any, Any, TrainingAnalyticsError | None]:
    """Await the oldest submitted batch: None, or the error that refused it."""
    ticket, events_batch = in_flight.popleft()
    try:
        replies = yield Await(ticket)
    except TrainingAnalyticsError as exc:
        return exc
    tally.add((yield from settled(events_batch, replies)))
    return None


def forget_sequence(stream: StreamSequence) -> Generator[Any, Any, None]:
    """Delete a stream's sequence keys (best effort: they expire anyway). One DEL per key:
    on a cluster they sit on the nodes of their tags."""
    with contextlib.suppress(TrainingAnalyticsError):
        yield from pipeline([cmd("DEL", key) for key in stream.counter_keys()])


def _aborted(
    cause: TrainingAnalyticsError, tally: _Tally, unapplied: int, applied: int | None = None
) -> BatchAbortedError:
    applied = tally.seen if applied is None else applied
    doubt = unapplied - applied
    where = f"events 0-{applied - 1} went through, " if applied else "no event went through, "
    if doubt:
        where += f"events {applied}-{unapplied - 1} may or may not have been applied, "
    return BatchAbortedError.of(
        cause,
        applied=applied,
        first_unapplied=unapplied,
        result=tally.result(),
        message=f"{cause} (import stopped: {where}events from {unapplied} on were not applied)",
    )


def _batches(ctx: Context, events: Iterable[Any], batch_size: int) -> Iterator[EventBatch]:
    current = EventBatch(ctx)
    current.bulk = True
    index = -1
    for index, event in enumerate(events):
        try:
            encode(current, event)
        except InvalidInputError as exc:
            raise type(exc)(f"event {index}: {exc}") from exc
        if current.size >= batch_size:
            yield current
            current = EventBatch(ctx)
            current.bulk, current.first_index = True, index + 1
    if current.size:
        yield current
