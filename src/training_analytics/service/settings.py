"""What a service instance is configured with; workers receive it through the environment."""

from __future__ import annotations

import os
from typing import Final

from pydantic import BaseModel, Field

#: The settings of the workers ``serve`` starts (JSON); each worker builds its app from it.
SETTINGS_ENV: Final = "TRAINING_ANALYTICS_SERVICE_SETTINGS"
MIB: Final = 1024 * 1024


class ServiceSettings(BaseModel):
    redis_url: str | None = None
    """The store; None: ``REDIS_URL``, else the embedded Valkey server."""
    prefix: str = ""
    tz: str = "UTC"
    max_body_bytes: int = Field(default=16 * MIB, ge=1)
    """Larger request bodies are refused with 413."""
    max_batch_events: int = Field(default=10_000, ge=1)
    """A ``POST /events`` with more events is refused with 413."""
    batch_size: int = Field(default=1000, ge=1)
    """Events per round trip to the store."""
    cors_origins: list[str] = Field(default_factory=list)
    """Origins allowed by CORS; none by default (no CORS headers at all)."""
    retry_after_seconds: int = Field(default=5, ge=1)
    """``Retry-After`` of a 503 when the store cannot be reached."""
    store_timeout_seconds: float = Field(default=5.0, gt=0)
    """A store command taking longer fails (503) instead of hanging the request."""
    max_concurrent_requests: int = Field(default=256, ge=1)
    """Requests a worker handles at once; more wait their turn. Each holds at most one store
    connection at a time, so this also bounds a worker's connections to the store."""

    def to_env(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_env(cls) -> ServiceSettings:
        raw = os.environ.get(SETTINGS_ENV)
        return cls() if raw is None else cls.model_validate_json(raw)
