"""Answers of reads kept as JSON bytes while the store is unchanged: what the HTTP service
answers its analytics GETs from.

An answer is labelled with the store's **stamp** read before it: the store version
(``changes``: raised by every write that changes training data, in the same atomic call; on the
cluster layout the sum of every tag's counter, with a digest of their values) and the store's
epoch, a random token in ``training:service:epoch``. A store emptied and written again
restarts its version from 0; its new epoch keeps answers read before from matching it. The
epoch is created by the first read that succeeds without one (after its read, so that a read
that fails writes nothing); that read's answer is not kept, since its stamp had no epoch.

A kept answer is given only to a reader whose own stamp, read after its request arrived, is the
same, and for at most ``max_age`` seconds (default 1) after its read began. Since an answer's
data is read after its stamp, an equal stamp means no write that raises the version came in
between: the reader gets the figures as they are. What raises no version is bounded by
``max_age`` instead: figures that move with the clock (certificates expiring within 30 days,
the default date range of a series) and keys written behind the library's back (the older
system's writes, which reads otherwise catch as drift).

The cache holds bytes, not models: a kept answer costs no validation and no serialisation.
Only answers are kept, never errors (a course not found is read again each time).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Final, NamedTuple

from pydantic import BaseModel

from ._context import Context
from ._protocol import Op, batch, cmd
from .apikeys import ApiKeyInfo, verification, verified
from .changes import Versions, version_read, versions
from .errors import InvalidInputError, StoreError

DEFAULT_MAX_AGE: Final = 1.0
"""Seconds a kept answer is given at most, whatever the version says."""
DEFAULT_MAX_ENTRIES: Final = 1024
DEFAULT_MAX_BYTES: Final = 16 * 1024 * 1024


class Stamp(NamedTuple):
    """What the store was when a reader looked: its epoch (None until a read creates it:
    then nothing is kept), its version and, on the cluster layout, the digest of every tag's
    version counter (``changes.Versions``: there the version is a sum, and two readers may see
    the same sum of different counters)."""

    epoch: str | None
    version: int
    digest: str | None = None


class CheckedKeys(NamedTuple):
    """``check_keys``: each key's record (None: malformed, unknown or revoked), in the order
    given, and the store's stamp (None when the store's version key holds something else than
    a counter: then nothing is kept)."""

    infos: list[ApiKeyInfo | None]
    stamp: Stamp | None


class _Entry(NamedTuple):
    stamp: Stamp
    read_at: float
    body: bytes


class AnswerCache:
    """Answers by name (a read and its arguments), the least recently used dropped past
    ``max_entries`` or ``max_bytes``. No I/O: ``cached_answer`` and ``answer_at`` fill it.

    ``clock`` gives seconds (monotonic by default; tests pass their own). One cache per event
    loop or thread: it takes no lock."""

    def __init__(
        self,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not max_age >= 0 or max_entries < 1 or max_bytes < 1:
            raise InvalidInputError(
                "max_age must be >= 0 and max_entries, max_bytes at least 1; "
                f"got {max_age}, {max_entries}, {max_bytes}"
            )
        self.max_age = max_age
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: Hashable, stamp: Stamp | None) -> bytes | None:
        """The answer kept for ``name`` if it was read at ``stamp`` less than ``max_age``
        seconds ago; else None."""
        if stamp is None or stamp.epoch is None:
            return None
        entry = self._entries.get(name)
        if entry is None or entry.stamp != stamp or self.clock() - entry.read_at >= self.max_age:
            return None
        self._entries.move_to_end(name)
        return entry.body

    def put(self, name: Hashable, stamp: Stamp | None, body: bytes, read_at: float) -> None:
        """Keep ``body``, read from ``read_at`` on (a ``clock`` time) after ``stamp`` was
        read. An answer of a later version of the same epoch is not replaced by an older one
        (a slow read finishing after a faster, newer one)."""
        if stamp is None or stamp.epoch is None or len(body) > self.max_bytes:
            return
        old = self._entries.get(name)
        if old is not None:
            if old.stamp.epoch == stamp.epoch and old.stamp.version > stamp.version:
                return
            del self._entries[name]
            self._bytes -= len(old.body)
        self._entries[name] = _Entry(stamp, read_at, body)
        self._bytes += len(body)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped.body)


def read_stamp(ctx: Context) -> Op[Stamp | None]:
    """The store's stamp (one round trip; on the cluster layout one more when courses were
    registered since this facade last looked). None when a key of the stamp holds something
    else than it should: nothing is kept then."""
    read = version_read(ctx)
    try:
        epoch, *replies = yield batch(cmd("GET", ctx.keys.store_epoch()), *read.calls)
        found = yield from versions(ctx, read, replies)
    except StoreError:
        return None
    return _stamp(epoch, found)


def _stamp(epoch: str | None, found: Versions) -> Stamp:
    return Stamp(None if epoch is None else str(epoch), found.total, found.digest)


def check_keys(ctx: Context, keys: Sequence[str]) -> Op[CheckedKeys]:
    """Verify each of ``keys`` as ``verify_api_key`` does (its last use recorded) and read the
    store's stamp, all in one round trip (on the cluster layout one more when courses were
    registered since this facade last looked): what a worker of the HTTP service sends for the
    requests waiting at one moment."""
    if isinstance(keys, str | bytes) or not isinstance(keys, Sequence):
        raise InvalidInputError(f"keys must be a list of API keys, got {type(keys).__name__}")
    calls = [verification(ctx, key) for key in keys]
    sent = [call for call in calls if call is not None]
    stamp: Stamp | None = None
    read = version_read(ctx)
    try:
        replies = yield batch(*sent, cmd("GET", ctx.keys.store_epoch()), *read.calls)
    except StoreError:
        # Perhaps a key of the stamp holds another type: the keys alone, whose own errors
        # raise from here.
        records = (yield batch(*sent)) if sent else []
    else:
        records = replies[: len(sent)]
        epoch, *version_replies = replies[len(sent) :]
        try:
            stamp = _stamp(epoch, (yield from versions(ctx, read, version_replies)))
        except StoreError:  # a version counter something else broke: nothing can be kept
            stamp = None
    found = iter(records)
    infos = [None if call is None else verified(next(found)) for call in calls]
    return CheckedKeys(infos, stamp)


def _check(cache: object, name: object, read: object, stamp: object) -> None:
    if not isinstance(cache, AnswerCache):
        raise InvalidInputError(f"cache must be an AnswerCache, got {type(cache).__name__}")
    try:
        hash(name)
    except TypeError:
        raise InvalidInputError(f"an answer's name must be hashable: {name!r}") from None
    if not callable(read):
        raise InvalidInputError(f"read must be a read operation, got {type(read).__name__}")
    if stamp is not None and not (
        isinstance(stamp, Stamp)
        and isinstance(stamp.epoch, str | None)
        and type(stamp.version) is int
        and isinstance(stamp.digest, str | None)
    ):
        raise InvalidInputError(f"stamp must be a Stamp or None, got {stamp!r}")


def answer_at(
    ctx: Context,
    cache: AnswerCache,
    name: Hashable,
    read: Callable[[Context], Op[BaseModel]],
    stamp: Stamp | None,
) -> Op[bytes]:
    """``read``'s answer as JSON bytes (the model's camelCase JSON): the one ``cache`` keeps
    for ``name`` at ``stamp`` (read by the caller, after its request arrived), else read now
    and kept. ``name`` must say everything the read depends on besides the store."""
    _check(cache, name, read, stamp)
    body = cache.get(name, stamp)
    if body is not None:
        return body
    read_at = cache.clock()
    model = yield from read(ctx)
    if not isinstance(model, BaseModel):
        raise InvalidInputError(f"read must answer a model, got {type(model).__name__}")
    body = model.model_dump_json().encode()
    if stamp is not None and stamp.epoch is None:
        # The store's first kept answer (or its first since it was emptied) needs an epoch:
        # created now, after a read that succeeded; this answer, stamped without one, is not kept.
        # A full server refuses it: answers are then read each time until one can be made.
        with contextlib.suppress(StoreError):
            yield batch(cmd("SET", ctx.keys.store_epoch(), secrets.token_hex(16), "NX"))
        return body
    cache.put(name, stamp, body, read_at)
    return body


def cached_answer(
    ctx: Context,
    cache: AnswerCache,
    name: Hashable,
    read: Callable[[Context], Op[BaseModel]],
) -> Op[bytes]:
    """``answer_at`` with the stamp read first: one round trip when the cache holds the
    answer, one more than ``read`` needs when it does not."""
    _check(cache, name, read, None)
    stamp = yield from read_stamp(ctx)
    return (yield from answer_at(ctx, cache, name, read, stamp))
