"""API keys of the HTTP service, kept in the store so every worker and every restart agree.

A key is ``ta_`` and 43 random URL-safe characters (256 bits), shown once when created. The
store keeps only its SHA-256: a record ``training:service:apikey:{sha256}`` (name, role,
createdAt, lastUsedAt) and the index ``training:service:apikeys`` (name -> sha256). A fast hash
is enough: the keys are random, not passwords, so there is nothing to guess from a digest.
Revocation deletes the record, so the next request with that key is refused.

Roles nest: ``viewer`` reads, ``ingest`` also writes events, progress and certifications,
``admin`` may do everything.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any, Final, Generic, Literal, NamedTuple, TypeAlias, TypeVar

from ._context import Context
from ._protocol import Batch, Op, ScriptCall, batch, cmd, load_script, pipeline, single
from ._time import to_iso
from .errors import (
    ApiKeyExistsError,
    ApiKeyNotFoundError,
    InvalidInputError,
    TrainingAnalyticsError,
)
from .keys import check_id
from .types import SeedModel

Role: TypeAlias = Literal["viewer", "ingest", "admin"]
ROLES: Final[tuple[Role, ...]] = ("viewer", "ingest", "admin")
KEY_PREFIX: Final = "ta_"
_KEY_LENGTH: Final = len(KEY_PREFIX) + 43  # token_urlsafe(32)
_SCRIPT = load_script("apikeys.lua")
_MAX_ATTEMPTS = 5


class ApiKeyInfo(SeedModel):
    """What the store knows about a key (never the key itself)."""

    name: str
    role: Role
    created_at: str
    last_used_at: str | None = None


class NewApiKey(SeedModel):
    key: str
    """The secret: shown this once, stored only as its SHA-256."""
    info: ApiKeyInfo


def role_allows(role: Role, required: Role) -> bool:
    """Whether ``role`` may do what ``required`` may (roles nest viewer < ingest < admin)."""
    return ROLES.index(role) >= ROLES.index(required)


def check_role(value: str) -> Role:
    for role in ROLES:
        if value == role:
            return role
    raise InvalidInputError(f"unknown role {value!r}; roles are {', '.join(ROLES)}")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _call(ctx: Context, digest: str, *args: str) -> ScriptCall:
    return ScriptCall(_SCRIPT, (ctx.keys.api_keys(), ctx.keys.api_key(digest)), args)


def _info(fields: dict[str, str] | list[str]) -> ApiKeyInfo | None:
    if isinstance(fields, list):  # a script's flat reply
        fields = dict(zip(fields[0::2], fields[1::2], strict=True))
    if not fields or fields.get("role") not in ROLES:
        return None
    return ApiKeyInfo(
        name=fields.get("name", ""),
        role=check_role(fields["role"]),
        created_at=fields.get("createdAt", ""),
        last_used_at=fields.get("lastUsedAt") or None,
    )


def create_api_key(ctx: Context, name: str, role: str) -> Op[NewApiKey]:
    """A new key with ``role``; ApiKeyExistsError if ``name`` is taken."""
    check_id(name, "key name")
    checked = check_role(role)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    digest = _digest(key)
    created = to_iso(ctx.now())
    replies = yield batch(_call(ctx, digest, "create", name, digest, checked, created))
    if not int(replies[0]):
        raise ApiKeyExistsError(f"an API key named {name!r} exists already")
    return NewApiKey(key=key, info=ApiKeyInfo(name=name, role=checked, created_at=created))


def list_api_keys(ctx: Context) -> Op[list[ApiKeyInfo]]:
    """Every key's name, role, creation and last use, by name."""
    index = yield from single("HGETALL", ctx.keys.api_keys())
    names = sorted(index)
    records = yield from pipeline([cmd("HGETALL", ctx.keys.api_key(index[n])) for n in names])
    infos = [_info(r) for r in records]
    return [i for i in infos if i is not None]


def has_api_keys(ctx: Context) -> Op[bool]:
    count = yield from single("HLEN", ctx.keys.api_keys())
    return bool(int(count))


def revoke_api_key(ctx: Context, name: str) -> Op[None]:
    """Delete a key at once; ApiKeyNotFoundError if no key has that name."""
    check_id(name, "key name")
    for _ in range(_MAX_ATTEMPTS):
        digest = yield from single("HGET", ctx.keys.api_keys(), name)
        if not digest:
            raise ApiKeyNotFoundError(f"no API key named {name!r}")
        replies = yield batch(_call(ctx, digest, "revoke", name, digest))
        if int(replies[0]):
            return
    raise ApiKeyNotFoundError(f"no API key named {name!r}")


def _well_formed(key: object) -> bool:
    return isinstance(key, str) and len(key) == _KEY_LENGTH and key.startswith(KEY_PREFIX)


def _touch(ctx: Context, key: str) -> ScriptCall:
    return _call(ctx, _digest(key), "touch", to_iso(ctx.now()))


def verification(ctx: Context, key: str) -> ScriptCall | None:
    """The call that verifies ``key`` and records its use, for a round trip of the caller's
    (None for a malformed key, which needs none); its reply goes to ``verified``."""
    return _touch(ctx, key) if _well_formed(key) else None


def verified(reply: dict[str, str] | list[str]) -> ApiKeyInfo | None:
    """The key's record from the reply to its ``verification`` (None: unknown or revoked)."""
    return _info(reply)


def verify_api_key(ctx: Context, key: str) -> Op[ApiKeyInfo | None]:
    """The key's record (its last use set to now), or None for a malformed or unknown key."""
    if not _well_formed(key):
        return None
    replies = yield batch(_touch(ctx, key))
    return _info(replies[0])


T = TypeVar("T")


class KeyedRead(NamedTuple, Generic[T]):
    """What ``read_with_api_key`` found: the key's record (None for a malformed or unknown
    key), whether its role allows the read, and the read's result (None unless allowed)."""

    info: ApiKeyInfo | None
    allowed: bool
    value: T | None


def read_with_api_key(
    ctx: Context, key: str, required: Role, read: Callable[[Context], Op[T]]
) -> Op[KeyedRead[T]]:
    """``read(ctx)`` on behalf of ``key``, which is verified (its last use recorded) in the
    read's first round trip instead of one of its own.

    For reads only: their first step runs before the key is known, so it must change nothing.
    A key that is unknown, revoked or whose role is below ``required`` stops the read there
    (nothing of it is returned). When that first round trip fails, the key is verified alone
    first, so a refused key gets its refusal, not the read's error.
    """
    check_role(required)
    if not _well_formed(key):
        return KeyedRead(None, False, None)
    op = read(ctx)
    touch = _touch(ctx, key)
    try:
        first = next(op)
    except StopIteration as done:  # a read without a round trip
        info = yield from verify_api_key(ctx, key)
        allowed = info is not None and role_allows(info.role, required)
        return KeyedRead(info, allowed, done.value if allowed else None)
    if not isinstance(first, Batch):
        op.close()
        raise TypeError("read_with_api_key runs reads that yield plain batches only")
    replies: list[Any] | None = None
    failure: TrainingAnalyticsError | None = None
    try:
        replies = yield Batch((touch, *first.calls))
    except TrainingAnalyticsError as exc:
        failure = exc
    if replies is not None:
        info = _info(replies[0])
    else:
        info = yield from verify_api_key(ctx, key)
    if info is None or not role_allows(info.role, required):
        op.close()
        return KeyedRead(info, False, None)
    value = yield from _resume(op, replies[1:] if replies is not None else None, failure)
    return KeyedRead(info, True, value)


def _resume(op: Op[T], reply: list[Any] | None, failure: TrainingAnalyticsError | None) -> Op[T]:
    """Go on with ``op`` from its first yield: send it ``reply`` (or throw ``failure``), then
    pass its requests and their replies or errors through."""
    try:
        request = op.throw(failure) if failure is not None else op.send(reply)
        while True:
            try:
                answer = yield request
            except TrainingAnalyticsError as exc:
                request = op.throw(exc)
            else:
                request = op.send(answer)
    except StopIteration as done:
        result: T = done.value
        return result
