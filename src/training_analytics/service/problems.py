"""Every error answer is problem+json (RFC 9457), mapped here, in one place, from the typed
errors of ``training_analytics.errors`` and from request validation.

Details never carry a key, a URL or a store address: the store's own messages (which name its
host) are replaced by a fixed text, and validation errors list where and what, not the input.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors
from .settings import ServiceSettings
from .state import metrics_of

PROBLEM_JSON: Final = "application/problem+json"
_TYPE_BASE: Final = "urn:training-analytics:problem:"
log = logging.getLogger("training_analytics.service")


class InvalidParam(BaseModel):
    name: str
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    invalid_params: list[InvalidParam] | None = Field(default=None, alias="invalidParams")
    """For 422: each parameter or body field that was refused, and why."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)


class ApiError(Exception):
    """An error the service itself raises (auth, limits): status, title, detail, headers."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers = headers or {}


# (status, title) per error class; the most specific class wins (checked in MRO order).
_STATUS: Final[dict[type[errors.TrainingAnalyticsError], tuple[int, str]]] = {
    errors.InvalidInputError: (422, "Invalid input"),
    errors.NotFoundError: (404, "Not found"),
    errors.ConflictError: (409, "Conflict"),
    errors.ConcurrentUpdateError: (409, "Concurrent update, retry"),
    errors.NotIndexedError: (503, "Store not indexed"),
    errors.StoreUnavailableError: (503, "Store unavailable"),
    errors.EmbeddedServerError: (503, "Store unavailable"),
    errors.StoreError: (502, "Store error"),
    errors.ClusterUnsupportedError: (501, "Not available on a cluster"),
}
_STATUS_MESSAGES: Final = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
}


_STORE_ERRORS: Final = (
    errors.StoreUnavailableError,
    errors.StoreError,
    errors.EmbeddedServerError,
    errors.NotIndexedError,
)


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    invalid_params: list[InvalidParam] | None = None,
) -> JSONResponse:
    body = Problem(
        type=_TYPE_BASE + slug if slug else "about:blank",
        title=title,
        status=status,
        detail=detail,
        invalidParams=invalid_params,
    ).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def for_error(exc: errors.TrainingAnalyticsError, settings: ServiceSettings) -> JSONResponse:
    status, title = 500, "Internal error"
    for kind in type(exc).__mro__:
        if kind in _STATUS:
            status, title = _STATUS[kind]
            break
    slug = type(exc).__name__
    if isinstance(exc, errors.StoreUnavailableError | errors.EmbeddedServerError):
        return problem(
            status,
            title,
            "the store cannot be reached; retry later",
            slug=slug,
            headers={"Retry-After": str(settings.retry_after_seconds)},
        )
    if isinstance(exc, errors.ClusterUnsupportedError):
        return problem(status, title, str(exc), slug=slug)
    if isinstance(exc, errors.StoreError):
        log.error("store error: %s", exc)
        return problem(status, title, "the store refused an operation", slug=slug)
    return problem(status, title, str(exc), slug=slug)


def _validation(exc: RequestValidationError) -> JSONResponse:
    params: list[InvalidParam] = []
    malformed = False
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            malformed = True
        location = ".".join(str(part) for part in error.get("loc", ()))
        params.append(InvalidParam(name=location, reason=str(error.get("msg", "invalid"))))
    if malformed:
        return problem(400, "Malformed JSON", "the request body is not valid JSON", slug="json")
    return problem(
        422,
        "Invalid input",
        "the request's parameters or body do not match the schema",
        slug="validation",
        invalid_params=params,
    )


def install(app: FastAPI, settings: ServiceSettings) -> None:
    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.TrainingAnalyticsError)
        # A call the cluster cannot serve (501: its keys in several hash slots; no route of
        # this service sends one) is no failure of the store to alert on.
        if isinstance(exc, _STORE_ERRORS) and not isinstance(exc, errors.ClusterUnsupportedError):
            metrics_of(request).store_errors.labels(type(exc).__name__).inc()
        return for_error(exc, settings)

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return problem(exc.status, exc.title, exc.detail, slug=exc.slug, headers=exc.headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation(exc)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        title = _STATUS_MESSAGES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem(exc.status_code, title, detail, headers=dict(exc.headers or {}))

    async def on_unencodable(request: Request, exc: Exception) -> JSONResponse:
        # JSON can carry lone surrogates ("\ud800"), which no store command can encode; the
        # core refuses them as InvalidInputError where it checks text, this catches the rest.
        return problem(
            422,
            "Invalid input",
            "the request holds text that is not valid Unicode (a lone surrogate)",
            slug="unicode",
        )

    async def on_out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # Date arithmetic past year 9999 or before year 1 on a client's dates; the core words
        # these as InvalidDate(Range)Error where it checks, this catches the rest.
        return problem(
            422, "Invalid input", "a date or number in the request is out of range", slug="range"
        )

    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        # A bug: the traceback goes to the log (requests carry no secret in their path or
        # query), the client gets no detail.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, "Internal error")

    app.add_exception_handler(errors.TrainingAnalyticsError, on_error)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(UnicodeEncodeError, on_unencodable)
    app.add_exception_handler(OverflowError, on_out_of_range)
    app.add_exception_handler(Exception, on_bug)


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI: every error response of every route is problem+json with the Problem schema."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(components["Problem"].pop("$defs", {}))
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if "requestBody" in operation:  # a body that is not JSON at all
                operation["responses"].setdefault("400", {"description": "Malformed JSON body"})
            for status, response in operation.get("responses", {}).items():
                if status[0] in "45":
                    response["content"] = {
                        PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    }
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI: the problem responses a route may give besides 422 (FastAPI adds that one)."""
    described = {
        400: "Malformed request body",
        401: "Missing or invalid API key",
        403: "The key's role is too low",
        404: "Not found",
        409: "Conflict with the stored state",
        413: "Body or batch too large",
        415: "Unsupported media type",
        422: "Invalid parameters or body",
        502: "The store refused an operation",
        503: "The store cannot be reached (Retry-After) or is not indexed",
    }
    return {status: {"description": described[status]} for status in statuses}
