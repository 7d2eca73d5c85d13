"""The per-worker objects routes reach through the request: the facade and the metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from fastapi import Request

from ..facade import AsyncTrainingAnalytics

if TYPE_CHECKING:
    from .metrics import Metrics
    from .settings import ServiceSettings


def analytics_of(request: Request) -> AsyncTrainingAnalytics:
    return cast(AsyncTrainingAnalytics, request.app.state.analytics)


def metrics_of(request: Request) -> Metrics:
    return cast("Metrics", request.app.state.metrics)


def settings_of(request: Request) -> ServiceSettings:
    return cast("ServiceSettings", request.app.state.settings)
