"""The store version: a counter every write call that changes training data raises in the same
atomic call (``lua/apply.lua``, ``lua/catalog.lua``, reindex). One GET tells a reader whether
anything changed since it last looked, which is what the dashboard polls instead of the
analytics themselves."""

from __future__ import annotations

from ._context import Context
from ._protocol import Op, single
from .errors import StoreError
from .types import StoreVersion


def get_store_version(ctx: Context) -> Op[StoreVersion]:
    """The current version (0 on a store nothing has been written to). StoreError if the key
    holds something else than a counter (writes leave such a key alone and still apply)."""
    key = ctx.keys.store_version()
    reply = yield from single("GET", key)
    try:
        return StoreVersion(version=int(reply or 0))
    except ValueError:
        raise StoreError(f"{key} holds {reply!r}, not a counter; delete it") from None
