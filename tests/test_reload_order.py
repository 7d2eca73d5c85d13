"""Streamed batches apply in submission order while another client flushes and reloads the code.

Each claim needs its certificate issued first; the import pipelines issue -> claim pairs while a
second thread runs FUNCTION FLUSH and FUNCTION LOAD in a loop. A batch that fails because the
library vanished must not be overtaken by the batches behind it (which may find the library
reloaded by the other client): every claim must apply, none be refused, and no "Function not
found" reach the caller.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

import training_analytics as ta
from training_analytics._writes import APPLY

from .factories import NOW, certification
from .stores import ONE_SERVER

pytestmark = ONE_SERVER

PAIRS = 1500


def _pairs() -> Iterator[Any]:
    for i in range(PAIRS):
        yield ta.CertificationIssuedEvent.model_validate(
            {"certification": certification(f"cert{i}"), "at": NOW}
        )
        yield ta.CertificationStatusEvent(
            cert_id=f"cert{i}", new_status="claimed", claimed_at="2025-06-02T10:00:00.000Z"
        )


class Reloader(threading.Thread):
    """Another client: FUNCTION FLUSH, then (every other time) FUNCTION LOAD, in a loop."""

    def __init__(self, url: str, pause: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.pause = pause
        self.client = redis.Redis.from_url(url)
        self.stop = threading.Event()
        self.flushes = 0

    def run(self) -> None:
        while not self.stop.is_set():
            self.client.function_flush("SYNC")
            self.flushes += 1
            if self.flushes % 2:
                self.client.function_load(APPLY.library, replace=True)
            if self.pause:
                time.sleep(self.pause)

    def __enter__(self) -> Reloader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()
        self.client.close()


def _check(result: ta.BatchResult, client: redis.Redis, flushes: int) -> None:
    assert result.rejected == []
    assert result.applied == 2 * PAIRS
    assert client.scard("training:certifications:status:claimed") == PAIRS
    assert client.scard("training:certifications:status:issued") == 0
    assert flushes > 10  # the race was exercised
    # The stream's sequence key is gone.
    assert not list(client.scan_iter("training:ingest:*"))


# Flushes back to back (the old code let "Function not found" escape), or spaced out (it re-sent
# a failed batch after later ones that found the code reloaded: claims before their issue).
@pytest.mark.parametrize("pause", [0.0, 0.005], ids=["tight", "spaced"])
@pytest.mark.parametrize("batch_size", [1, 7])
def test_streamed_import_keeps_order_while_code_is_reloaded(
    client: redis.Redis, redis_url: str, batch_size: int, pause: float
) -> None:
    importer = redis.Redis.from_url(redis_url, decode_responses=True)
    analytics = ta.TrainingAnalytics(importer, clock=lambda: NOW)
    with Reloader(redis_url, pause) as reloader:
        result = analytics.record_many(_pairs(), batch_size=batch_size, stream=True)
    importer.close()
    _check(result, client, reloader.flushes)


@pytest.mark.parametrize("pause", [0.0, 0.005], ids=["tight", "spaced"])
@pytest.mark.parametrize("batch_size", [1, 7])
def test_streamed_import_keeps_order_while_code_is_reloaded_async(
    client: redis.Redis, redis_url: str, batch_size: int, pause: float
) -> None:
    async def scenario() -> ta.BatchResult:
        importer = redis.asyncio.Redis.from_url(redis_url)
        try:
            analytics = ta.AsyncTrainingAnalytics(importer, clock=lambda: NOW)
            return await analytics.record_many(_pairs(), batch_size=batch_size, stream=True)
        finally:
            await importer.aclose()

    with Reloader(redis_url, pause) as reloader:
        result = asyncio.run(scenario())
    _check(result, client, reloader.flushes)


def test_single_writes_never_see_a_reload(client: redis.Redis, redis_url: str) -> None:
    writer = redis.Redis.from_url(redis_url, decode_responses=True)
    analytics = ta.TrainingAnalytics(writer, clock=lambda: NOW)
    with Reloader(redis_url) as reloader:
        for i in range(500):
            assert analytics.record_enrollment(f"u{i}", "c1") is True
    writer.close()
    assert reloader.flushes > 20
    assert client.scard("training:enrollments:c1") == 500
