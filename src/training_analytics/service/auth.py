"""API keys with nested roles (viewer < ingest < admin), verified against the store on every
request, so a revoked key is refused at once by every worker.

Every route takes ``Authorization: Bearer <key>``. The xAPI routes also take HTTP Basic with
the key's name as the user and the key as the password, the credentials every LRS client can
be configured with."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..apikeys import ApiKeyInfo, Role, role_allows
from .problems import ApiError
from .state import analytics_of

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
            raise ApiError(401, "unauthorized", "Unauthorized", "an API key is required", challenge)
        info = await analytics_of(request).verify_api_key(key)
        # Never echo the key: a typo'd key in a log or a reply is still a key. A name that is
        # not the key's gets the same answer as an unknown key.
        if info is None or (name is not None and name != info.name):
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

    return check


Viewer = Depends(require("viewer"))
Ingest = Depends(require("ingest"))
Admin = Depends(require("admin"))
IngestXapi = Depends(require("ingest", basic=True))
