"""The dashboard: static files from the package (``training_analytics/dashboard``), the page at
``/`` and its assets under ``/dashboard/``. It reads the public API with the key the user signs in
with, like any other client; nothing here reads the store."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.staticfiles import PathLike
from starlette.types import Scope

ASSETS: Final = Path(str(files("training_analytics") / "dashboard"))
ASSETS_PATH: Final = "/dashboard"

# Everything from this origin, nothing from elsewhere (no CDN can be used even by mistake);
# inline style attributes because the chart library positions its tooltips with them.
_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    """The dashboard's page (it signs in and reads the API itself)."""
    return FileResponse(ASSETS / "index.html", headers=_HEADERS)


class _Assets(StaticFiles):
    """Static files with the page's security headers; revalidated, so an upgrade shows at once."""

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(_HEADERS)
        return response


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS_PATH, _Assets(directory=ASSETS), name="dashboard")
