"""Bearer API keys with nested roles (viewer < ingest < admin), verified against the store on
every request, so a revoked key is refused at once by every worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..apikeys import ApiKeyInfo, Role, role_allows
from .problems import ApiError
from .state import analytics_of

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ta_…`")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="training-analytics"'}


def require(role: Role) -> Callable[..., Awaitable[ApiKeyInfo]]:
    """A dependency admitting keys whose role is ``role`` or above."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKeyInfo:
        if credentials is None:
            raise ApiError(
                401, "unauthorized", "Unauthorized", "an API key is required", _CHALLENGE
            )
        info = await analytics_of(request).verify_api_key(credentials.credentials)
        if info is None:
            # Never echo the key: a typo'd key in a log or a reply is still a key.
            raise ApiError(401, "unauthorized", "Unauthorized", "unknown API key", _CHALLENGE)
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
