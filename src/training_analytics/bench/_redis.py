"""Typed doors to redis-py's untyped ``execute_command`` (on a client and on a pipeline)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from redis.client import Pipeline


def command(client: redis.Redis, *args: Any) -> Any:
    """One command, one round trip; the decoded reply."""
    send: Callable[..., Any] = client.execute_command
    return send(*args)


def queue(pipe: Pipeline, *args: Any) -> None:
    """Add a command to a pipeline (sent by ``pipe.execute()``)."""
    add: Callable[..., Any] = pipe.execute_command
    add(*args)
