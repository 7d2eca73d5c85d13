"""Events applied one by one as far as the caller can tell: one outcome per event, never a raise
for a malformed one.

``record_many`` is for trusted bulk input: a malformed event raises before anything is sent.
Input from outside (the HTTP service's ``POST /events``, a file being imported) is different: a
bad line must not stop the good ones. ``record_each`` checks each event on its own, reports the
malformed ones as rejected with their index, and sends the others batch by batch through the same
write path as ``record_many`` (one atomic script call per batch; the script refuses events that
break a rule, such as an illegal status change, one by one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._context import Context
from ._protocol import Op
from ._writes import EventBatch, outcomes, send
from .errors import InvalidInputError
from .ingest import DEFAULT_BATCH_SIZE, encode
from .types import EventOutcome, EventOutcomes

_APPLIED = "applied"
_UNCHANGED = "unchanged"
_REJECTED = "rejected"


def _rejected(index: int, error: Exception) -> EventOutcome:
    return EventOutcome.model_construct(
        index=index, status=_REJECTED, error=type(error).__name__, message=str(error)
    )


class _Outcomes:
    """Outcomes by input position; the totals are counted as they are filled in."""

    def __init__(self) -> None:
        self.results: list[EventOutcome | None] = []
        self.applied = self.unchanged = self.rejected = 0

    def reject(self, index: int, error: Exception) -> None:
        self.results.append(_rejected(index, error))
        self.rejected += 1

    def pending(self) -> None:
        self.results.append(None)

    def settle(self, positions: list[int], replies: list[Any]) -> None:
        results = self.results
        for index, outcome in zip(positions, outcomes(replies), strict=True):
            if outcome is True:
                results[index] = EventOutcome.model_construct(
                    index=index, status=_APPLIED, error=None, message=None
                )
                self.applied += 1
            elif outcome is False:
                results[index] = EventOutcome.model_construct(
                    index=index, status=_UNCHANGED, error=None, message=None
                )
                self.unchanged += 1
            else:
                results[index] = _rejected(index, outcome)
                self.rejected += 1

    def result(self) -> EventOutcomes:
        results = [r for r in self.results if r is not None]
        # Every pending slot was settled by its batch's replies (zip is strict).
        assert len(results) == len(self.results)
        return EventOutcomes.model_construct(
            results=results, applied=self.applied, unchanged=self.unchanged, rejected=self.rejected
        )


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
    way. Errors of the store itself (unreachable, not indexed) still raise: the batches before
    were applied.
    """
    if batch_size < 1:
        raise InvalidInputError("batch_size must be at least 1")
    tally = _Outcomes()
    current = EventBatch(ctx)
    positions: list[int] = []
    for index, event in enumerate(events):
        try:
            # encode appends to the batch only once the event is valid, so a refusal leaves
            # the batch as it was.
            encode(current, _plain(event))
        except InvalidInputError as exc:
            tally.reject(index, exc)
            continue
        tally.pending()
        positions.append(index)
        if current.size >= batch_size:
            tally.settle(positions, (yield from send(current)))
            current, positions = EventBatch(ctx), []
    if current.size:
        tally.settle(positions, (yield from send(current)))
    return tally.result()
