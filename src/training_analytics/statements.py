"""xAPI statements into the store, each statement id counted once.

The statements arrive prepared by the pure layer (``training_analytics.xapi``): an id, a digest
of the statement, and the event it maps to (or why none). The store keeps each id with its
digest (``training:xapi:statement:{id}``; on a cluster in buckets like the certificates',
``training:xapi:statement:{:xapi:NNN}:id``) for a retention period. Three round trips:

1. read the digests held for the batch's ids (one MGET; on a cluster one per bucket present,
   all in one round trip): a different digest under an id is a conflict, and the whole batch
   is refused (``StatementConflictError``) before anything is written; an id held with the
   same digest is a statement sent again, and is skipped;
2. apply the events of the new statements through ``record_each`` (the one write path; each
   batch of events one atomic script call);
3. remember the new ids with their digests (``lua/xapi_statements.lua``, one call; on a
   cluster one per bucket, in one round trip).

The id check is not atomic with the write it guards (the write path's script is not this
module's to change). The failure windows, and why they are safe:

- the process dies, or the store fails, between 2 and 3: the events were applied but the ids
  not remembered; the client gets an error and sends the batch again, which applies the same
  events again. Every mapped event is idempotent in the store (a learner enrolled, completed or
  started a module is a set member; progress is the same figures saved again; a certification
  issued again with the same data is unchanged), so it still counts once;
- two requests carry the same new id at the same moment: both pass step 1 and both apply their
  events. With the same statement (a client retrying while its first attempt is in flight) that
  is the case above. With different statements, step 3 finds the id taken by the other; the
  result lists the id under ``raced`` (the service logs it) instead of pretending nothing
  was written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from pydantic import Field
from pydantic_core import PydanticSerializationError

from ._context import Context
from ._protocol import Op, ScriptCall, batch, cmd, load_script
from .errors import InvalidInputError, StatementConflictError
from .ingest import DEFAULT_BATCH_SIZE
from .outcomes import record_each
from .types import EventOutcome, SeedModel
from .xapi.files import Unreadable
from .xapi.intake import (
    InvalidStatementError,
    PreparedStatement,
    parse_statement_objects,
    prepare,
)
from .xapi.mapping import MappingRules

DEFAULT_RETENTION_SECONDS: Final = 90 * 24 * 3600
_REMEMBER = load_script("xapi_statements.lua")
_DIFFERENT = 2  # the script's reply for an id held by another statement


class StatementsResult(SeedModel):
    """What became of a batch of statements."""

    new: int = 0
    """Statements not seen before under their id (mapped or not)."""
    duplicates: int = 0
    """Statements sent again under their id: skipped."""
    ignored: int = 0
    """New statements that map to no event (acknowledged, not written)."""
    applied: int = 0
    unchanged: int = 0
    rejected: list[EventOutcome] = Field(default_factory=list)
    """Events the store refused (e.g. a certification re-issued with other data); ``index`` is
    the statement's position in the batch."""
    raced: list[str] = Field(default_factory=list)
    """Ids another statement took while this batch was written (see the module's notes)."""


def record_statements(
    ctx: Context,
    statements: Sequence[PreparedStatement],
    *,
    retention_seconds: int = DEFAULT_RETENTION_SECONDS,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Op[StatementsResult]:
    """Apply the events of the statements whose ids are new and remember those ids for
    ``retention_seconds``; skip statements sent again; StatementConflictError (and nothing
    written) if an id is held by a different statement."""
    if retention_seconds < 1:
        raise InvalidInputError("retention_seconds must be at least 1")
    result = StatementsResult()
    if not statements:
        return result
    keys = [ctx.keys.xapi_statement(s.id) for s in statements]
    groups = _by_slot(ctx, keys)
    replies = yield batch(*(cmd("MGET", *(keys[i] for i in group)) for group in groups))
    held: list[str | None] = [None] * len(keys)
    for group, values in zip(groups, replies, strict=True):
        for i, value in zip(group, values, strict=True):
            held[i] = value
    conflicts = [
        s.id
        for s, digest in zip(statements, held, strict=True)
        if digest is not None and digest != s.digest
    ]
    if conflicts:
        shown = ", ".join(conflicts[:5]) + (" ..." if len(conflicts) > 5 else "")
        raise StatementConflictError(
            f"{len(conflicts)} statement id(s) are held by a different statement: {shown}"
        )
    fresh = [index for index, digest in enumerate(held) if digest is None]
    result.duplicates = len(statements) - len(fresh)
    result.new = len(fresh)
    positions = [i for i in fresh if statements[i].event is not None]
    result.ignored = len(fresh) - len(positions)
    if positions:
        outcome = yield from record_each(
            ctx, [statements[i].event for i in positions], batch_size=batch_size
        )
        result.applied, result.unchanged = outcome.applied, outcome.unchanged
        result.rejected = [
            EventOutcome.model_construct(
                index=positions[r.index], status=r.status, error=r.error, message=r.message
            )
            for r in outcome.results
            if r.status == "rejected"
        ]
    if fresh:
        new_groups = _by_slot(ctx, [keys[i] for i in fresh])
        remembered = [[fresh[j] for j in group] for group in new_groups]
        replies = yield batch(
            *(
                ScriptCall(
                    _REMEMBER,
                    tuple(keys[i] for i in group),
                    (retention_seconds, *(statements[i].digest for i in group)),
                )
                for group in remembered
            )
        )
        raced = [
            i
            for group, reply in zip(remembered, replies, strict=True)
            for i, one in zip(group, reply, strict=True)
            if int(one) == _DIFFERENT
        ]
        result.raced = [statements[i].id for i in sorted(raced)]
    return result


def _by_slot(ctx: Context, keys: Sequence[str]) -> list[list[int]]:
    """The positions of ``keys`` by hash slot: one group on a single server; on a cluster one
    per statement bucket (``{:xapi:NNN}``), in order of first appearance, since a command or a
    script call there may only name keys of one slot."""
    if not ctx.keys.cluster:
        return [list(range(len(keys)))]
    groups: dict[str, list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(ctx.keys.slot_tag(key), []).append(position)
    return list(groups.values())


class RejectedStatement(SeedModel):
    position: int
    """Line number (JSON lines) or 1-based index (a JSON array)."""
    error: str
    message: str


class ImportedStatements(SeedModel):
    """What ``import_statements`` did with a file of statements."""

    read: int = 0
    new: int = 0
    duplicates: int = 0
    ignored: int = 0
    applied: int = 0
    unchanged: int = 0
    rejected: list[RejectedStatement] = Field(default_factory=list)


def import_statements(
    ctx: Context,
    items: Iterable[tuple[int, Any]],
    rules: MappingRules | None = None,
    stored: datetime | None = None,
    *,
    retention_seconds: int = DEFAULT_RETENTION_SECONDS,
    batch_size: int = 500,
) -> Op[ImportedStatements]:
    """Statements read from a file (``xapi.files.read_statements``: position and decoded JSON),
    ``batch_size`` per ``record_statements`` call. Unlike ``POST /xapi/statements``, a bad
    statement does not stop the others: an invalid one, or one whose id a different statement
    holds, is rejected with its position; a statement repeated in the file counts once.
    ``stored`` (default: the facade's clock) is the time of statements without a timestamp."""
    if batch_size < 1:
        raise InvalidInputError("batch_size must be at least 1")
    rules = rules or MappingRules()
    stored = stored or ctx.now()
    summary = ImportedStatements()
    chunk: list[tuple[int, PreparedStatement]] = []
    seen: dict[str, str] = {}

    def reject(position: int, error: Exception | str, message: str = "") -> None:
        if isinstance(error, str):
            name = error
        else:
            name = error.name if isinstance(error, _RefusedError) else type(error).__name__
        summary.rejected.append(
            RejectedStatement(position=position, error=name, message=message or str(error))
        )

    for position, item in items:
        summary.read += 1
        if isinstance(item, Unreadable):
            reject(position, "InvalidStatementError", item.message)
            continue
        try:
            [statement] = parse_statement_objects([item])
            [ready] = prepare([statement], rules, stored)
        except InvalidStatementError as exc:
            reject(position, exc)
            continue
        except PydanticSerializationError as exc:  # text JSON cannot carry (lone surrogates)
            reject(position, InvalidStatementError(f"the statement cannot be stored: {exc}"))
            continue
        held = seen.get(ready.id)
        if held is not None:
            if held == ready.digest:
                summary.duplicates += 1
            else:
                reject(position, StatementConflictError(f"statement id {ready.id} repeats"))
            continue
        seen[ready.id] = ready.digest
        chunk.append((position, ready))
        if len(chunk) >= batch_size:
            yield from _import_chunk(ctx, chunk, summary, retention_seconds, reject)
            chunk, seen = [], {}
    if chunk:
        yield from _import_chunk(ctx, chunk, summary, retention_seconds, reject)
    summary.rejected.sort(key=lambda r: r.position)
    return summary


def _import_chunk(
    ctx: Context,
    chunk: list[tuple[int, PreparedStatement]],
    summary: ImportedStatements,
    retention_seconds: int,
    reject: Callable[[int, Exception], None],
) -> Op[None]:
    try:
        parts = [
            (
                chunk,
                (
                    yield from record_statements(
                        ctx, [p for _, p in chunk], retention_seconds=retention_seconds
                    )
                ),
            )
        ]
    except StatementConflictError:
        # Some ids are held by other statements: one by one, so only those are rejected.
        parts = []
        for one in chunk:
            try:
                done = yield from record_statements(
                    ctx, [one[1]], retention_seconds=retention_seconds
                )
            except StatementConflictError as exc:
                reject(one[0], exc)
                continue
            parts.append(([one], done))
    for part, result in parts:
        summary.new += result.new
        summary.duplicates += result.duplicates
        summary.ignored += result.ignored
        summary.applied += result.applied
        summary.unchanged += result.unchanged
        for refused in result.rejected:
            reject(
                part[refused.index][0], _RefusedError(refused.error or "", refused.message or "")
            )


class _RefusedError(Exception):
    """An event the store refused, reported under its own error name."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
