"""xAPI statements into the store, each statement id counted once.

The statements arrive prepared by the pure layer (``training_analytics.xapi``): an id, a digest
of the statement, and the event it maps to (or why none). The store keeps each id with its
digest (``training:xapi:statement:{id}``) for a retention period. Three round trips:

1. read the digests held for the batch's ids (one MGET): a different digest under an id is a
   conflict, and the whole batch is refused (``StatementConflictError``) before anything is
   written; an id held with the same digest is a statement sent again, and is skipped;
2. apply the events of the new statements through ``record_each`` (the one write path; each
   batch of events one atomic script call);
3. remember the new ids with their digests (``lua/xapi_statements.lua``, one call).

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

from collections.abc import Sequence
from typing import Final

from pydantic import Field

from ._context import Context
from ._protocol import Op, ScriptCall, batch, load_script, single
from .errors import InvalidInputError, StatementConflictError
from .ingest import DEFAULT_BATCH_SIZE
from .outcomes import record_each
from .types import EventOutcome, SeedModel
from .xapi.intake import PreparedStatement

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
    held = yield from single("MGET", *keys)
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
        replies = yield batch(
            ScriptCall(
                _REMEMBER,
                tuple(keys[i] for i in fresh),
                (retention_seconds, *(statements[i].digest for i in fresh)),
            )
        )
        result.raced = [
            statements[i].id
            for i, reply in zip(fresh, replies[0], strict=True)
            if int(reply) == _DIFFERENT
        ]
    return result
