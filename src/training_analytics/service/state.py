"""The per-worker objects routes reach through the request: the facade, the cluster client (on
a cluster), the metrics and the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from fastapi import Request

from ..facade import AsyncTrainingAnalytics

if TYPE_CHECKING:
    from redis.asyncio.cluster import RedisCluster

    from .metrics import Metrics
    from .settings import ServiceSettings


def analytics_of(request: Request) -> AsyncTrainingAnalytics:
    return cast(AsyncTrainingAnalytics, request.app.state.analytics)


def cluster_of(request: Request) -> RedisCluster | None:
    """The cluster client, when the service was started on a ``redis+cluster://`` URL."""
    return cast("RedisCluster | None", getattr(request.app.state, "cluster", None))


def metrics_of(request: Request) -> Metrics:
    return cast("Metrics", request.app.state.metrics)


def settings_of(request: Request) -> ServiceSettings:
    return cast("ServiceSettings", request.app.state.settings)
