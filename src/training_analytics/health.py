"""Is the store there? For readiness probes: one PING, no key read."""

from __future__ import annotations

from ._context import Context
from ._protocol import Op, single


def ping_store(ctx: Context) -> Op[bool]:
    """True when the store answers (an unreachable one raises StoreUnavailableError)."""
    reply = yield from single("PING")
    return reply in (True, "PONG", b"PONG")
