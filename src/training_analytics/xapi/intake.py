"""A request's statements made ready for the store: validated, given ids, checked for ids
repeated within the batch, digested (for the idempotency check) and mapped to events.

Pure: the time of receipt and the rules are arguments; nothing here touches the store.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, NamedTuple

from pydantic import ValidationError

from ..errors import InvalidInputError
from .mapping import MappedEvent, MappingRules, map_statement
from .models import STATEMENTS, Statement

#: Left out of the digest: what an LRS sets itself or may change (xAPI "statement comparison").
_NOT_COMPARED: Final[set[str]] = {"id", "stored", "authority", "version"}


class InvalidStatementError(InvalidInputError):
    """A statement does not follow the xAPI data model (or a batch repeats an id)."""


class PreparedStatement(NamedTuple):
    id: str
    digest: str
    """SHA-256 of the statement without the properties an LRS sets: a statement sent again
    under its id matches it; a different one does not."""
    event: MappedEvent | None
    ignored: str | None


_SERIALIZER: Final = Statement.__pydantic_serializer__


def digest(statement: Statement) -> str:
    # The serializer itself: model_dump_json's wrapper costs a microsecond a statement.
    body = _SERIALIZER.to_json(statement, exclude=_NOT_COMPARED, exclude_none=True, by_alias=True)
    return hashlib.sha256(body).hexdigest()


def _describe(error: ValidationError, offset: int = 0, limit: int = 5) -> str:
    parts = []
    for item in error.errors(include_url=False)[:limit]:
        location = list(item["loc"])
        where = ""
        first = location[0] if location else None
        if isinstance(first, int):
            location.pop(0)
            where = f"statement {first + offset}: "
        path = ".".join(str(p) for p in location if not str(p).startswith("function-"))
        parts.append(f"{where}{path or 'body'}: {item['msg']}")
    more = error.error_count() - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def parse_statements(body: bytes | str) -> list[Statement]:
    """One statement (a JSON object) or an array of them; InvalidStatementError naming the
    first problems (statement index and path) when any statement is invalid."""
    text = body.lstrip()
    try:
        if text[:1] in (b"[", "["):
            return STATEMENTS.validate_json(body)
        return [Statement.model_validate_json(body)]
    except ValidationError as exc:
        raise InvalidStatementError(_describe(exc)) from exc


def parse_statement_objects(items: Sequence[Any]) -> list[Statement]:
    """Statements already decoded from JSON (a file's lines)."""
    try:
        return STATEMENTS.validate_python(items)
    except ValidationError as exc:
        raise InvalidStatementError(_describe(exc)) from exc


def prepare(
    statements: Sequence[Statement], rules: MappingRules, stored: datetime
) -> list[PreparedStatement]:
    """Ids (a new UUID where a statement has none), digests and events, in order;
    InvalidStatementError if two statements of the batch share an id (the spec has such a batch
    refused whole)."""
    prepared = []
    seen: set[str] = set()
    for statement in statements:
        if statement.id is None:
            statement_id = str(uuid.uuid4())
        else:
            statement_id = statement.id.lower()
            if statement_id in seen:
                raise InvalidStatementError(f"the batch holds statement id {statement_id} twice")
            seen.add(statement_id)
        mapped = map_statement(statement, rules, stored)
        prepared.append(
            PreparedStatement(statement_id, digest(statement), mapped.event, mapped.ignored)
        )
    return prepared
