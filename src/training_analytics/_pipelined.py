"""Submitted batches: sent on one connection without waiting, their replies read in order.

Bulk ingest submits batch after batch (``Submit``) and collects each batch's replies later
(``Await``). Sending a batch before the previous one has replied keeps the server busy while
the client prepares the next: nothing waits for a round trip, nor for a thread to be scheduled.

Like the operations, this is sans-I/O: :class:`Pipelined` turns ``submit`` and ``result`` into
generators of :class:`Send` / :class:`Read` actions on one connection, and the two executors
perform them (``run`` with a sync connection, ``arun`` with an asyncio one).

Code the server lacks (FUNCTION FLUSH during an import, say) fails the batch that needs it;
streamed writes carry a sequence number (``lua/apply.lua``), so every batch sent behind it is
refused too, writing nothing, even if another client loaded the code again meanwhile. Their
replies are all read before anything else is sent, then the code is loaded and the failed calls
re-sent on the same connection, in order, so batches apply in submission order. The first
batch is read at once, so that a first use loads the code before other batches queue up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from ._protocol import Batch, Call
from ._wire import Commands, Mode, commands_for, finish, has_errors, load_and_retry
from .errors import TrainingAnalyticsError


@dataclass(frozen=True, slots=True)
class Send:
    """Write these commands to the connection; read nothing."""

    commands: Commands


@dataclass(frozen=True, slots=True)
class Read:
    """Read the next reply (an error reply as its exception object)."""


Action: TypeAlias = Send | Read
Steps: TypeAlias = Generator[Action, Any, Any]


class Pipelined:
    """The batches one operation submitted, on one connection."""

    def __init__(self, mode: Mode, decoded: bool) -> None:
        self.mode = mode
        """How code goes out (the executor records it for the pool when it changes)."""
        self.decoded = decoded
        self.submitted = 0
        self._in_flight: deque[tuple[int, Sequence[Call]]] = deque()
        self._done: dict[int, list[Any] | TrainingAnalyticsError] = {}

    @property
    def idle(self) -> bool:
        """No batch awaits its replies on the connection."""
        return not self._in_flight

    def submit(self, batch: Batch) -> Generator[Action, Any, int]:
        """Send ``batch``; its ticket for :meth:`result`."""
        ticket = self.submitted
        self.submitted += 1
        yield Send(commands_for(batch.calls, self.mode))
        self._in_flight.append((ticket, batch.calls))
        if ticket == 0:
            yield from self._read_until(ticket)
        return ticket

    def settle(self, outcome: list[Any] | TrainingAnalyticsError) -> int:
        """A ticket for a batch the executor ran at once (a client bound to one connection)."""
        ticket = self.submitted
        self.submitted += 1
        self._done[ticket] = outcome
        return ticket

    def result(self, ticket: int) -> Generator[Action, Any, list[Any]]:
        """The replies of a submitted batch; its first error raised, typed."""
        yield from self._read_until(ticket)
        outcome = self._done.pop(ticket)
        if isinstance(outcome, TrainingAnalyticsError):
            raise outcome
        return outcome

    def drain(self) -> Steps:
        """Read every reply still due (before the connection goes back to its pool)."""
        while self._in_flight:
            yield from self._read_until(self._in_flight[-1][0])
        self._done.clear()

    def _read_until(self, ticket: int) -> Steps:
        while ticket not in self._done:
            t, calls = self._in_flight.popleft()
            read = [(t, calls, (yield from _replies(len(calls))))]
            if has_errors(read[0][2]):
                # Perhaps code the server lacks: whatever was sent behind this batch replies
                # first, then loads and re-sends go out on the connection, in order. The
                # batches read together are recovered together: a streamed batch refused
                # because the one before it failed is re-sent after it.
                while self._in_flight:
                    t, calls = self._in_flight.popleft()
                    read.append((t, calls, (yield from _replies(len(calls)))))
                every_call = [call for _, calls, _ in read for call in calls]
                every_reply = [reply for _, _, replies in read for reply in replies]
                every_reply = yield from self._recover(every_call, every_reply)
                start = 0
                for t, calls, _ in read:
                    read_replies = every_reply[start : start + len(calls)]
                    start += len(calls)
                    self._settle(t, read_replies)
            else:
                self._settle(t, read[0][2])

    def _settle(self, ticket: int, replies: list[Any]) -> None:
        try:
            self._done[ticket] = finish(replies, self.decoded)
        except TrainingAnalyticsError as exc:
            # This batch's outcome: the batches read with it keep theirs.
            self._done[ticket] = exc

    def _recover(
        self, calls: Sequence[Call], replies: list[Any]
    ) -> Generator[Action, Any, list[Any]]:
        exchange = load_and_retry(calls, replies, self.mode)
        try:
            commands = next(exchange)
            while True:
                yield Send(commands)
                commands = exchange.send((yield from _replies(len(commands))))
        except StopIteration as done:
            replies, self.mode = done.value
            return replies


def _replies(count: int) -> Generator[Action, Any, list[Any]]:
    replies = []
    for _ in range(count):
        replies.append((yield Read()))
    return replies
