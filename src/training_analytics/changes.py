"""The store version: a counter every write call that changes training data raises in the same
atomic call (``lua/apply.lua``, ``lua/catalog.lua``, reindex). One GET tells a reader whether
anything changed since it last looked, which is what the dashboard polls instead of the
analytics themselves.

On the cluster layout each write tag has its own counter (every course, every certificate
bucket, the catalog: ``training:version:{t}``), raised atomically with that tag's writes, and
the store's version is their sum. Counters only grow, so the sum grows with every write: a
reader that looks after a write acknowledged to anyone sees a larger number than any reader
that looked before it. The sum alone does not say *which* counters a reader saw, though: read
across nodes, no two counters are read at one moment, so two readers racing two writes can
each see one of them and find the same sum. ``Versions.digest`` names every counter's value,
which is what kept answers compare (``answers``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, NamedTuple

from ._context import Context
from ._protocol import Command, Op, batch, cmd, single
from .errors import StoreError
from .keys import CATALOG_TAG
from .types import StoreVersion

# ctx.memo entry: the registered courses a previous read found, sorted (their versions are
# asked in the first round trip; a course registered since costs one more).
_KNOWN = "version-courses"
_FIXED = "version-fixed-calls"
_FIXED_TAGS = "version-fixed-tags"


class Versions(NamedTuple):
    """The store's version (the sum of the cluster layout's counters) and, on the cluster
    layout, a digest of every counter's value (None on one server: one counter says it all)."""

    total: int
    digest: str | None = None


class VersionRead(NamedTuple):
    """A version read's commands, to go in a round trip of the caller's (their replies go to
    :func:`versions`), and the courses whose counters they ask."""

    calls: tuple[Command, ...]
    courses: tuple[str, ...] = ()


def version_read(ctx: Context) -> VersionRead:
    """One GET on one server. On the cluster layout: the course registry, and the counter of
    the catalog, of every certificate bucket and of every course a previous read of this
    facade found registered (the executor sends them as one pipeline per node)."""
    k = ctx.keys
    if not k.cluster:
        return VersionRead((cmd("GET", k.store_version()),))
    known: tuple[str, ...] = ctx.memo.get(_KNOWN, ())
    calls = (
        cmd("SMEMBERS", k.course_registry()),
        *_fixed_calls(ctx),
        *(cmd("GET", k.store_version(course)) for course in known),
    )
    return VersionRead(calls, known)


def versions(ctx: Context, read: VersionRead, replies: Sequence[Any]) -> Op[Versions]:
    """The version from the replies to ``read``'s calls (on the cluster layout one more round
    trip when courses were registered since the previous read). StoreError when a counter
    holds something else."""
    k = ctx.keys
    if not k.cluster:
        return Versions(_counter(k.store_version(), replies[0]))
    registry, *values = replies
    fixed = ctx.memo.get(_FIXED_TAGS)
    if fixed is None:
        fixed = ctx.memo[_FIXED_TAGS] = _fixed_tags(ctx)
    found = dict(zip((*fixed, *read.courses), values, strict=True))
    courses = sorted(registry)
    new = [course for course in courses if course not in found]
    if new:
        more = yield batch(*(cmd("GET", k.store_version(course)) for course in new))
        found.update(zip(new, more, strict=True))
    if tuple(courses) != read.courses:
        ctx.memo[_KNOWN] = tuple(courses)
    # The registry says which courses count: one asked from the memo but no longer
    # registered (a store emptied meanwhile) does not.
    total, digest = 0, hashlib.blake2b(digest_size=16)
    for tag in (*fixed, *courses):
        reply = found[tag]
        if not reply:
            continue
        try:
            value = int(reply)
        except ValueError:
            raise StoreError(_NOT_A_COUNTER.format(key=k.store_version(tag), reply=reply)) from None
        total += value
        digest.update(f"{tag}={value};".encode())
    return Versions(total, digest.hexdigest())


def _fixed_tags(ctx: Context) -> list[str]:
    return [CATALOG_TAG, *ctx.keys.certification_buckets()]


def _fixed_calls(ctx: Context) -> tuple[Command, ...]:
    """The GETs of the catalog's and every bucket's counter, made once per facade (a
    dashboard polls the version twice a second: building 257 key names each time showed in
    profiles)."""
    calls: tuple[Command, ...] | None = ctx.memo.get(_FIXED)
    if calls is None:
        k = ctx.keys
        calls = ctx.memo[_FIXED] = tuple(cmd("GET", k.store_version(t)) for t in _fixed_tags(ctx))
    return calls


_NOT_A_COUNTER = "{key} holds {reply!r}, not a counter; delete it"


def _counter(key: str, reply: Any) -> int:
    try:
        return int(reply or 0)
    except ValueError:
        raise StoreError(_NOT_A_COUNTER.format(key=key, reply=reply)) from None


def read_versions(ctx: Context) -> Op[Versions]:
    """The store's version and, on the cluster layout, its digest (see :class:`Versions`)."""
    read = version_read(ctx)
    replies = yield batch(*read.calls)
    return (yield from versions(ctx, read, replies))


def get_store_version(ctx: Context) -> Op[StoreVersion]:
    """The current version (0 on a store nothing has been written to). StoreError if the key
    holds something else than a counter (writes leave such a key alone and still apply).

    One GET on one server; on the cluster layout the sum of every tag's counter (see the
    module's text): one round trip (one pipeline per node) once the registered courses are
    known to this facade, else two."""
    if not ctx.keys.cluster:
        key = ctx.keys.store_version()
        reply = yield from single("GET", key)
        return StoreVersion(version=_counter(key, reply))
    found = yield from read_versions(ctx)
    return StoreVersion(version=found.total)
