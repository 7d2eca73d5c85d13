"""Limits: request bodies are bounded (past the configured size the request is refused with
413, before the body is read when ``Content-Length`` says so, else as soon as the bytes received
pass it), and so is the number of requests a worker handles at once (the others wait)."""

from __future__ import annotations

import asyncio

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import problem


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    response = problem(
                        413,
                        "Content too large",
                        f"the request body is larger than {self.max_bytes} bytes",
                    )
                    await response(scope, receive, send)
                    return
                break
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised where the route reads the body; FastAPI re-raises HTTPException,
                    # and the handler in ``problems`` answers 413.
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, bounded, send)


class ConcurrencyLimit:
    """At most ``limit`` HTTP requests in the app at once; later ones wait for a slot.

    A burst of clients then queues instead of opening one store connection per request without
    bound (a store refuses connections past its ``maxclients``).
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._slots is None:  # made in the worker's event loop
            self._slots = asyncio.Semaphore(self.limit)
        async with self._slots:
            await self.app(scope, receive, send)
