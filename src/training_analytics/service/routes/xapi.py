"""The xAPI statements resource, as an LRS exposes it (docs/xapi.md): statements are validated
and mapped by the pure layer (``training_analytics.xapi``), then one facade call
(``record_statements``) writes their events and keeps their ids.

Status codes follow the xAPI spec: 200 (POST: the ids) and 204 (PUT); 400 for an invalid
statement, batch or version header; 409 for a different statement under a held id.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...statements import StatementsResult
from ...xapi import InvalidStatementError, MappingRules, PreparedStatement, parse_statements
from ...xapi import prepare as prepare_statements
from ..auth import IngestXapi
from ..problems import ApiError, responses
from ..settings import ServiceSettings
from ..state import analytics_of, metrics_of, settings_of

PREFIX: Final = "/xapi"
VERSION_HEADER: Final = "X-Experience-API-Version"
#: What a response says when the request named no version it could answer in.
DEFAULT_VERSION: Final = "1.0.3"
_ACCEPTED: Final = re.compile(r"^(?:1\.0(?:\.[0-3])?|2\.0(?:\.0)?)$")
_DAY_SECONDS: Final = 24 * 3600
log = logging.getLogger("training_analytics.service.xapi")

router = APIRouter(prefix=PREFIX, tags=["xapi"])

_STATEMENT_BODY: Final = {
    "requestBody": {
        "required": True,
        "description": "An xAPI statement (1.0.3 or 2.0), or (POST) an array of them.",
        "content": {"application/json": {"schema": {}}},
    },
    "parameters": [
        {
            "name": VERSION_HEADER,
            "in": "header",
            "required": True,
            "schema": {"type": "string", "pattern": _ACCEPTED.pattern},
        }
    ],
}


def mapping_rules(settings: ServiceSettings) -> MappingRules:
    return MappingRules.of(
        course_pattern=settings.xapi_course_pattern,
        module_pattern=settings.xapi_module_pattern,
        activity_id=settings.xapi_activity_id,
        learner_id=settings.xapi_learner_id,
    )


class VersionHeader:
    """``X-Experience-API-Version`` on every response under ``/xapi``, errors included (401
    and 413 are answered before any route runs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        version = _response_version(dict(scope["headers"]).get(b"x-experience-api-version"))

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if VERSION_HEADER not in headers:
                    headers[VERSION_HEADER] = version
            await send(message)

        await self.app(scope, receive, sending)


def _response_version(requested: bytes | None) -> str:
    return "2.0.0" if requested is not None and requested.startswith(b"2.") else DEFAULT_VERSION


def _check_version(request: Request) -> None:
    given = request.headers.get(VERSION_HEADER)
    if given is None:
        raise ApiError(
            400, "xapi-version", "Bad request", f"the {VERSION_HEADER} header is missing"
        )
    if not _ACCEPTED.match(given.strip()):
        raise ApiError(
            400,
            "xapi-version",
            "Bad request",
            f"{VERSION_HEADER} {given!r} is not supported; send 1.0.0-1.0.3 or 2.0.0",
        )


async def _prepared(request: Request, statement_id: str | None = None) -> list[PreparedStatement]:
    """The body's statements, validated, mapped and given ids; with ``statement_id`` (PUT),
    exactly one statement, whose id (if it has one) must be that."""
    _check_version(request)
    settings = settings_of(request)
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise ApiError(
            415, "media-type", "Unsupported media type", "send application/json statements"
        )
    body = await request.body()
    try:
        statements = parse_statements(body)
    except InvalidStatementError as exc:
        raise ApiError(400, "xapi-statement", "Invalid statement", str(exc)) from exc
    if statement_id is not None:
        try:
            wanted = UUID(statement_id)
        except ValueError as exc:
            raise ApiError(
                400, "xapi-statement-id", "Bad request", "statementId is not a UUID"
            ) from exc
        if len(statements) != 1 or body.lstrip()[:1] == b"[":
            raise ApiError(400, "xapi-statement", "Invalid statement", "PUT takes one statement")
        given = statements[0].id
        if given is not None and given.lower() != str(wanted):
            raise ApiError(
                400,
                "xapi-statement-id",
                "Bad request",
                "the statement's id differs from statementId",
            )
        statements = [statements[0].model_copy(update={"id": str(wanted)})]
    if len(statements) > settings.max_batch_events:
        raise ApiError(
            413,
            "batch-too-large",
            "Content too large",
            f"{len(statements)} statements; at most {settings.max_batch_events} per request",
        )
    rules: MappingRules = request.app.state.xapi_rules
    try:
        return prepare_statements(statements, rules, datetime.now(UTC))
    except InvalidStatementError as exc:
        raise ApiError(400, "xapi-statement", "Invalid statement", str(exc)) from exc


async def _record(request: Request, prepared: list[PreparedStatement]) -> StatementsResult:
    settings = settings_of(request)
    result = await analytics_of(request).record_statements(
        prepared,
        retention_seconds=max(1, round(settings.xapi_statement_retention_days * _DAY_SECONDS)),
        batch_size=settings.batch_size,
    )
    counted = metrics_of(request).xapi_statements
    for outcome, count in (
        ("new", result.new),
        ("duplicate", result.duplicates),
        ("ignored", result.ignored),
        ("rejected", len(result.rejected)),
    ):
        if count:
            counted.labels(outcome).inc(count)
    if result.ignored:
        reasons = Counter(p.ignored for p in prepared if p.ignored is not None)
        log.info(
            "xAPI: %d statement(s) ignored: %s",
            result.ignored,
            "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common(5)),
        )
    for refused in result.rejected:
        log.warning(
            "xAPI: statement %s refused by the store: %s: %s",
            prepared[refused.index].id,
            refused.error,
            refused.message,
        )
    if result.raced:
        log.warning("xAPI: statement ids taken meanwhile by other statements: %s", result.raced)
    return result


@router.post(
    "/statements",
    dependencies=[IngestXapi],
    responses={
        200: {"description": "The statements' ids, in order (generated where none was given)"},
        **responses(400, 401, 403, 409, 413, 415, 503),
    },
    openapi_extra=_STATEMENT_BODY,
)
async def post_statements(request: Request) -> Response:
    """Store statements (one, or an array): their events are applied, each statement id once.
    An invalid statement refuses the whole batch (400); a different statement under an id
    already held refuses it too (409)."""
    prepared = await _prepared(request)
    await _record(request, prepared)
    return Response(json.dumps([p.id for p in prepared]), media_type="application/json")


@router.put(
    "/statements",
    dependencies=[IngestXapi],
    status_code=204,
    responses={
        204: {"description": "Stored (or already held with the same content)"},
        **responses(400, 401, 403, 409, 413, 415, 503),
    },
    openapi_extra=_STATEMENT_BODY,
)
async def put_statement(
    request: Request,
    statement_id: Annotated[str | None, Query(alias="statementId")] = None,
) -> Response:
    """Store one statement under ``statementId``."""
    if statement_id is None:
        raise ApiError(400, "xapi-statement-id", "Bad request", "statementId is required")
    await _record(request, await _prepared(request, statement_id))
    return Response(status_code=204)


@router.get("/about", responses={200: {"description": "The xAPI versions supported"}})
async def about() -> dict[str, Any]:
    """The xAPI versions this endpoint accepts (no key needed, as the spec says)."""
    return {"version": ["1.0.3", "2.0.0"]}
