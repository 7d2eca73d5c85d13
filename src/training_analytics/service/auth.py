"""API keys with nested roles (viewer < ingest < admin), verified against the store on every
request, so a revoked key is refused at once by every worker.

Every route takes ``Authorization: Bearer <key>``. The xAPI routes also take HTTP Basic with
the key's name as the user and the key as the password, the credentials every LRS client can
be configured with."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .._context import Context
from .._protocol import Op
from ..apikeys import ApiKeyInfo, KeyedRead, Role, role_allows
from .problems import ApiError
from .state import analytics_of

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ta_…`")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="training-analytics"'}
_BOTH_CHALLENGE = {"WWW-Authenticate": 'Basic realm="training-analytics", Bearer'}


def _basic(header: str) -> tuple[str, str] | None:
    """(name, key) from ``Basic base64(name:key)``, or None if the header is not that."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, colon, key = text.partition(":")
    return (name, key) if colon else None


def require(role: Role, *, basic: bool = False) -> Callable[..., Awaitable[ApiKeyInfo]]:
    """A dependency admitting keys whose role is ``role`` or above (with ``basic``, also as
    HTTP Basic credentials: the key's name and the key)."""
    challenge = _BOTH_CHALLENGE if basic else _CHALLENGE

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKeyInfo:
        name: str | None = None
        key: str | None = None
        if credentials is not None:
            key = credentials.credentials
        elif basic:
            pair = _basic(request.headers.get("authorization", ""))
            if pair is not None:
                name, key = pair
        if key is None:
            raise _missing(challenge)
        info = await analytics_of(request).verify_api_key(key)
        # A name that is not the key's gets the same answer as an unknown key.
        if info is not None and name is not None and name != info.name:
            info = None
        return _admitted(request, info, role, challenge)

    return check


def _missing(challenge: dict[str, str]) -> ApiError:
    return ApiError(401, "unauthorized", "Unauthorized", "an API key is required", challenge)


def admitted(request: Request, info: ApiKeyInfo | None, role: Role) -> ApiKeyInfo:
    """``info`` if it is a key whose role is ``role`` or above, else 401 or 403 as ``require``
    answers a bearer key."""
    return _admitted(request, info, role, _CHALLENGE)


def _admitted(
    request: Request, info: ApiKeyInfo | None, role: Role, challenge: dict[str, str]
) -> ApiKeyInfo:
    # Never echo the key: a typo'd key in a log or a reply is still a key.
    if info is None:
        raise ApiError(401, "unauthorized", "Unauthorized", "unknown API key", challenge)
    if not role_allows(info.role, role):
        raise ApiError(
            403,
            "forbidden",
            "Forbidden",
            f"this needs the {role} role; the key has {info.role}",
        )
    request.state.api_key_name = info.name
    return info


class _BearerKey(HTTPBearer):
    """The bearer key, or 401 without one: the same security scheme as ``_bearer`` in the
    OpenAPI document, in one dependency instead of two (FastAPI's dependency solving was a
    sixth of an analytics GET's time)."""

    async def __call__(self, request: Request) -> str:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None:
            raise _missing(_CHALLENGE)
        return credentials.credentials


_bearer_key = _BearerKey(
    auto_error=False, scheme_name="HTTPBearer", description=_bearer.model.description
)

BearerKey = Annotated[str, Depends(_bearer_key)]
"""The bearer key, not yet verified (a request without one is refused with 401): for routes
that verify it with their read, in ``read_as``."""


async def read_as(request: Request, key: str, role: Role, read: Callable[[Context], Op[T]]) -> T:
    """``read`` for ``key`` if its role is ``role`` or above, the key checked in the read's
    first round trip (``read_with_api_key``): 401 or 403 as ``require`` answers."""
    analytics = analytics_of(request)
    outcome: KeyedRead[Any] = await analytics.read_with_api_key(key, role, read)
    _admitted(request, outcome.info, role, _CHALLENGE)
    return cast(T, outcome.value)


Viewer = Depends(require("viewer"))
Ingest = Depends(require("ingest"))
Admin = Depends(require("admin"))
IngestXapi = Depends(require("ingest", basic=True))
