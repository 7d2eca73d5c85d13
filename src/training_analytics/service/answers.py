"""The analytics GETs' answers: kept JSON bytes (``training_analytics.answers``), and one round
trip a moment for the key checks and the store's stamp of every request waiting then.

Per worker, ``KeyGate`` sends one ``check_keys`` round trip for the requests waiting at one
moment, and no more than one at a time. A request that arrives while a round trip is out waits
for the next one, which starts when that one is back: each request's key is verified (and its
last use recorded) and the stamp read after it arrived, so a revoked key is refused by every
request that arrives after the revocation, and an answer is never older than the request. Under
load, one round trip serves tens of requests; alone, a request costs one round trip, as a key
check did before.

``Answers`` reads an answer the cache lacks once per name and stamp, however many requests
want it at that moment (the others wait for it), so that an answer's expiry or a write does
not start a burst of identical reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, cast

from fastapi import Request, Response
from pydantic import BaseModel

from .._context import Context
from .._protocol import Op
from ..answers import AnswerCache, CheckedKeys, Stamp
from ..apikeys import ApiKeyInfo, Role
from ..facade import AsyncTrainingAnalytics
from .auth import admitted

Checked = tuple[ApiKeyInfo | None, Stamp | None]


def _retrieve(done: asyncio.Future[Any]) -> None:
    """Mark an error as seen: every waiter may have gone (clients that disconnected)."""
    if not done.cancelled():
        done.exception()


class KeyGate:
    """Key checks and the store's stamp, one round trip at a time for the requests waiting."""

    def __init__(self, check: Callable[[list[str]], Awaitable[CheckedKeys]]) -> None:
        self._check = check
        # Each request waits on a future of its own: one that goes away (its client
        # disconnected) cancels only its own.
        self._waiting: dict[str, list[asyncio.Future[Checked]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.round_trips = 0
        """How many round trips were sent (tests and benchmarks read it)."""

    async def check(self, key: str) -> Checked:
        """The key's record (None: unknown, revoked or malformed) and the stamp, both read
        after this call began."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Checked] = loop.create_future()
        waiters = self._waiting.get(key)
        if waiters is None:
            self._waiting[key] = [future]
        else:
            waiters.append(future)
        if self._task is None:
            # Started on the loop's next turn: requests arriving in this one join it.
            self._task = loop.create_task(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self._waiting:
                waiting, self._waiting = self._waiting, {}
                keys = list(waiting)
                self.round_trips += 1
                try:
                    checked = await self._check(keys)
                    answers = {
                        key: (info, checked.stamp)
                        for key, info in zip(keys, checked.infos, strict=True)
                    }
                except asyncio.CancelledError:
                    _cancel(waiting)
                    raise
                except Exception as exc:  # noqa: BLE001 - each waiting request raises it
                    for futures in waiting.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for key, futures in waiting.items():
                    for future in futures:
                        if not future.done():
                            future.set_result(answers[key])
        finally:
            self._task = None
            _cancel(self._waiting)  # only when cancelled (the worker stops)


def _cancel(waiting: dict[str, list[asyncio.Future[Checked]]]) -> None:
    for futures in waiting.values():
        for future in futures:
            future.cancel()


class Answers:
    """Per worker: the gate, the cache, and the reads in flight."""

    def __init__(self, analytics: AsyncTrainingAnalytics, cache: AnswerCache | None = None):
        self.analytics = analytics
        self.cache = cache or AnswerCache()
        self.gate = KeyGate(analytics.check_keys)
        self._reads: dict[tuple[Hashable, Stamp], asyncio.Task[bytes]] = {}

    async def answer(
        self, name: Hashable, read: Callable[[Context], Op[BaseModel]], stamp: Stamp | None
    ) -> bytes:
        body = self.cache.get(name, stamp)
        if body is not None:
            return body
        if stamp is None:
            return await self.analytics.answer_at(self.cache, name, read, None)
        key = (name, stamp)
        task = self._reads.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                self.analytics.answer_at(self.cache, name, read, stamp)
            )
            self._reads[key] = task

            def done(finished: asyncio.Task[bytes]) -> None:
                self._reads.pop(key, None)
                _retrieve(finished)

            task.add_done_callback(done)
        return await asyncio.shield(task)


def answers_of(request: Request) -> Answers:
    return cast(Answers, request.app.state.answers)


async def answer_as(
    request: Request,
    key: str,
    role: Role,
    name: Hashable,
    read: Callable[[Context], Op[BaseModel]],
) -> Response:
    """``read``'s answer for ``key`` if its role is ``role`` or above (401 or 403 as
    ``auth.require`` answers): the kept answer when the store is unchanged since it was read,
    else read now. ``name`` says everything the read depends on besides the store."""
    answers = answers_of(request)
    info, stamp = await answers.gate.check(key)
    admitted(request, info, role)
    body = await answers.answer(name, read, stamp)
    return Response(body, media_type="application/json")
