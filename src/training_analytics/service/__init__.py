"""The HTTP service: ``create_app(settings)`` builds a FastAPI app over one
``AsyncTrainingAnalytics``; ``training-analytics serve`` runs it under uvicorn.

``create_app`` is imported on first use: ``serve`` must configure prometheus-client's
multiprocess mode (an environment variable it reads once, at import) before the app's metrics
module is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import ServiceSettings

if TYPE_CHECKING:
    from .app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "ServiceSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name in ("API_PREFIX", "create_app"):
        from . import app  # noqa: PLC0415 - see the module docstring

        return getattr(app, name)
    raise AttributeError(name)
