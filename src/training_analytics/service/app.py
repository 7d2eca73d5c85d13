"""The FastAPI application: ``create_app(settings)``, over one AsyncTrainingAnalytics per worker.

The data flow is client -> route -> facade -> executor -> store, with no second path: routes
validate, call one facade method and return its model; errors become problem+json in
``problems``; keys are checked in ``auth``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPMethod
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from .. import __version__
from ..facade import AsyncTrainingAnalytics
from ..server import async_connect
from . import apidocs, dashboard, problems
from .answers import Answers
from .limits import BodyLimit, ConcurrencyLimit
from .metrics import MeasureRequests, Metrics
from .routes import API_PREFIX, catalog, certifications, learning, operations, reports, xapi
from .routes.learning import EVENT_DEFINITIONS

__all__ = ["API_PREFIX", "app_from_env", "create_app"]
from .settings import ServiceSettings

_CORS_METHODS = (
    HTTPMethod.GET,
    HTTPMethod.POST,
    HTTPMethod.PUT,
    HTTPMethod.PATCH,
    HTTPMethod.DELETE,
)

DESCRIPTION = """Training analytics over HTTP: the same operations as the Python library, JSON in
the seed's camelCase. Send an API key as `Authorization: Bearer <key>`; roles nest: `viewer`
reads, `ingest` also writes events, progress and certifications, `admin` may do everything.
Errors are `application/problem+json` (RFC 9457). xAPI statements go to `/xapi/statements`
(HTTP Basic with the key's name and the key, or the bearer key; role `ingest`)."""


def create_app(
    settings: ServiceSettings | None = None,
    *,
    analytics: AsyncTrainingAnalytics | None = None,
    tune_gc: bool = False,
) -> FastAPI:
    """The application. Without ``analytics`` it connects to ``settings.redis_url`` (else
    ``REDIS_URL``, else the embedded server) when it starts, and closes the client when it
    stops. ``tune_gc`` is for a process that runs this app alone, as ``serve``'s workers do:
    see ``_tune_gc``."""
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if tune_gc:
            _tune_gc()
        if analytics is not None:
            app.state.analytics = analytics
            app.state.answers = Answers(analytics)
            yield
            return
        client = async_connect(
            settings.redis_url,
            socket_timeout=settings.store_timeout_seconds,
            # A request holds one connection at a time (two while a batch of events is in
            # flight); the concurrency limit keeps the pool from running out.
            max_connections=2 * settings.max_concurrent_requests,
        )
        if isinstance(client, AsyncRedisCluster):
            # readyz reports the cluster's state.
            app.state.cluster = client
        app.state.analytics = AsyncTrainingAnalytics(client, prefix=settings.prefix, tz=settings.tz)
        app.state.answers = Answers(app.state.analytics)
        try:
            yield
        finally:
            await client.aclose()

    app = FastAPI(
        title="training-analytics",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # apidocs serves /docs from the package, not from a CDN
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.metrics = metrics = Metrics()
    app.state.xapi_rules = xapi.mapping_rules(settings)
    problems.install(app, settings)
    for router in (
        reports.router,
        catalog.router,
        learning.router,
        certifications.router,
        operations.api_router,
        operations.router,
        xapi.router,
    ):
        app.include_router(router)
    dashboard.install(app)
    apidocs.install(app)
    # Added last = outermost: the body limit applies before anything reads the body, and the
    # measurements include everything.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=[m.value for m in _CORS_METHODS],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ConcurrencyLimit, limit=settings.max_concurrent_requests)
    app.add_middleware(MeasureRequests, metrics=metrics)
    app.add_middleware(xapi.VersionHeader)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(EVENT_DEFINITIONS)
            app.openapi_schema = problems.document(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


#: Allocations (net) between two young-generation collections; Python's default is 700.
GC_YOUNG_THRESHOLD = 20_000


def _tune_gc() -> None:
    """Garbage collection for a worker, once started (measured under 50 clients, see
    docs/performance.md).

    The objects alive at startup (routes, models, schemas: about 75,000) never become garbage,
    yet every full collection walked them: up to 100 ms each, a few times a second under load,
    a fifth of the worker's time and its worst latencies. ``gc.freeze()`` leaves them out.

    Requests waiting on the store keep their objects alive meanwhile, and at Python's default
    threshold (700) 50 such requests set off a young collection every eight requests that walks
    them all, to free nothing (they hold no cycles): 5 - 6% of an analytics GET. At 20,000 the
    collections stay, rarer; cyclic garbage waits for at most that many allocations (a few MB).
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def app_from_env() -> FastAPI:
    """The app a ``serve`` worker runs (uvicorn ``factory=True``): settings from the
    environment."""
    _log_to_stderr()
    return create_app(ServiceSettings.from_env(), tune_gc=True)


def _log_to_stderr() -> None:
    """The service's own messages (statements ignored, store errors) next to uvicorn's:
    uvicorn configures its loggers only, so ours would print warnings and above alone."""
    logger = logging.getLogger("training_analytics.service")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
