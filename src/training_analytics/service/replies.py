"""Success bodies: a model's camelCase JSON straight to bytes.

FastAPI, given a route's return value, validates it against the response model again, dumps
it to Python objects, then encodes those with ``json``: three passes over a model the core has
just built. ``json_reply`` is one pass in pydantic-core; routes keep ``response_model`` for the
OpenAPI description.
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def json_reply(model: BaseModel, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")
