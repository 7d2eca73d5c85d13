"""xAPI statements as one more input format: the data model, the mapping to this project's
events, and the preparation of a batch (ids, digests). Pure: no I/O; the store side
(statement ids kept for idempotency) is ``training_analytics.statements``."""

from .intake import (
    InvalidStatementError,
    PreparedStatement,
    digest,
    parse_statement_objects,
    parse_statements,
    prepare,
)
from .mapping import Mapped, MappedEvent, MappingRules, map_statement
from .models import Statement

__all__ = [
    "InvalidStatementError",
    "Mapped",
    "MappedEvent",
    "MappingRules",
    "PreparedStatement",
    "Statement",
    "digest",
    "map_statement",
    "parse_statement_objects",
    "parse_statements",
    "prepare",
]
