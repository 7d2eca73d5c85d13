"""The sans-I/O core's vocabulary.

An operation is a plain generator: it yields a :class:`Batch` (one round trip: a single command,
a script call, or a pipeline of them), receives the list of replies, and finally returns its
result. It never touches a socket, so the same operation runs under the sync executor
(:func:`training_analytics._exec.run`) and the asyncio one (:func:`training_analytics._exec.arun`).
Errors the server raises for a batch are thrown into the generator at its ``yield``, so an
operation can handle the ones it expects (e.g. the index marker missing on a fresh store).
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, NamedTuple, TypeAlias, TypeVar

from .errors import CodeUnavailableError

T = TypeVar("T")

Arg: TypeAlias = str | int | float | bytes


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script assembled from files under ``lua/``: definitions, then a body.

    The same code runs three ways. As a function library (``FUNCTION LOAD`` once, then
    ``FCALL``) its definitions run once per server, not on every call, which is most of a single
    write's server time. Where functions are unavailable (an ACL that forbids them) it runs as a
    script (``EVALSHA``) whose ``#!lua`` line declares the same flags. Either way the server
    knows before running it whether it writes: a write is refused up front when the server is
    at its ``maxmemory`` (nothing runs, nothing is written), a read (``no-writes``) runs there
    too, and as ``FCALL_RO`` / ``EVALSHA_RO``. Servers before Redis 7 know neither functions nor
    ``#!lua`` lines: they get ``legacy_source``, whose first write is ``legacy_guard`` (a write
    that changes nothing, see ``lua/apply.lua``), because those servers check memory at a
    script's first write command and let every later one through. Either way the body is a
    function of KEYS and ARGV.
    """

    name: str
    definitions: str
    body: str
    read_only: bool = False
    legacy_guard: str = ""
    source: str = field(init=False)
    """The script form, for SCRIPT LOAD / EVALSHA (Redis 7+, Valkey)."""
    sha: str = field(init=False)
    legacy_source: str = field(init=False)
    """The script form for servers before Redis 7: no ``#!lua`` line."""
    legacy_sha: str = field(init=False)
    library: str = field(init=False)
    """The function-library form, for FUNCTION LOAD."""
    function: str = field(init=False)
    """The function's name for FCALL; it carries the code's hash, so that two versions of this
    library can share a server (a rolling upgrade) without replacing each other's code."""

    def __post_init__(self) -> None:
        main = f"local function main(KEYS, ARGV)\n{self.body}\nend\n"
        plain = f"{self.definitions}\n{main}return main(KEYS, ARGV)\n"
        shebang = "#!lua flags=no-writes" if self.read_only else "#!lua"
        source = f"{shebang}\n{plain}"
        legacy = f"{self.legacy_guard}\n{plain}" if self.legacy_guard else plain
        sha = hashlib.sha1(source.encode()).hexdigest()
        tag = f"{self.name}_{sha[:16]}"
        flags = "{'no-writes'}" if self.read_only else "{}"
        library = (
            f"#!lua name=training_analytics_{tag}\n{self.definitions}\n{main}"
            f"redis.register_function{{function_name='ta_{tag}', callback=main, flags={flags}}}\n"
        )
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "sha", sha)
        object.__setattr__(self, "legacy_source", legacy)
        object.__setattr__(self, "legacy_sha", hashlib.sha1(legacy.encode()).hexdigest())
        object.__setattr__(self, "library", library)
        object.__setattr__(self, "function", f"ta_{tag}")


@cache
def load_script(*files: str, read_only: bool = False, legacy_guard: str = "") -> Script:
    """A script from ``lua/<file>`` parts: shared definitions and handlers, the body last."""
    package = resources.files("training_analytics") / "lua"
    *definitions, body = ((package / name).read_text(encoding="utf-8") for name in files)
    name = files[-1].removesuffix(".lua")
    return Script(
        name=name,
        definitions="\n".join(definitions),
        body=body,
        read_only=read_only,
        legacy_guard=legacy_guard,
    )


# Named tuples rather than frozen dataclasses: a single write builds three of these, and a
# tuple is built in C.


class Command(NamedTuple):
    args: tuple[Arg, ...]
    node: str | None = None
    """Cluster only: the primary (``host:port``, as ``primaries()`` names it) that must run a
    command that names no key (a per-node SCAN); None routes it by its key."""


class ScriptCall(NamedTuple):
    script: Script
    keys: Sequence[str | bytes]
    args: Sequence[Arg]


Call: TypeAlias = Command | ScriptCall


class Batch(NamedTuple):
    """Calls sent in one round trip. Replies come back in order, decoded to ``str``."""

    calls: tuple[Call, ...]


@dataclass(frozen=True, slots=True)
class Submit:
    """Start a batch without waiting for its replies; the reply to this request is a ticket.

    Submitted batches run one after another, in the order submitted, while the operation goes on
    (bulk ingest encodes the next batch meanwhile). ``Await(ticket)`` gives the batch's replies.
    """

    batch: Batch


@dataclass(frozen=True, slots=True)
class Await:
    """The replies of a submitted batch (its errors are raised here)."""

    ticket: Any


Request: TypeAlias = Batch | Submit | Await

Op: TypeAlias = Generator[Request, Any, T]


def cmd(*args: Arg) -> Command:
    return Command(args)


def batch(*calls: Call) -> Batch:
    return Batch(calls)


def on_node(node: str, *args: Arg) -> Command:
    """A command for one cluster primary (a per-node SCAN): see ``Command.node``."""
    return Command(args, node)


def single(*args: Arg) -> Generator[Batch, list[Any], Any]:
    """One command, one round trip; returns its reply."""
    replies = yield Batch((Command(args),))
    return replies[0]


def cardinalities(keys: Sequence[str]) -> Generator[Batch, list[Any], list[int]]:
    """SCARD of every key, in one round trip and one command (none for no keys)."""
    if not keys:
        return []
    script = load_script("cardinalities.lua", read_only=True)
    try:
        replies = yield Batch((ScriptCall(script, tuple(keys), ()),))
    except CodeUnavailableError:
        # The server lacks the function and this user may not load it (a read-only ACL user),
        # or it is at its maxmemory and refuses to: the same answer, one SCARD per key.
        counts = yield Batch(tuple(Command(("SCARD", key)) for key in keys))
        return [int(n) for n in counts]
    return [int(n) for n in replies[0]]


def cardinalities_per_slot(
    groups: Sequence[Sequence[str]],
) -> Generator[Batch, list[Any], list[list[int]]]:
    """SCARD of every key of every group, in one round trip: one ``cardinalities.lua`` call per
    group, each group's keys in one hash slot (on a cluster the executor sends each node its
    groups in one pipeline, all nodes side by side). Replies in the groups' order."""
    calls = [group for group in groups if group]
    if not calls:
        return [[] for _ in groups]
    script = load_script("cardinalities.lua", read_only=True)
    try:
        replies = yield Batch(tuple(ScriptCall(script, tuple(keys), ()) for keys in calls))
        counts = iter([int(n) for n in reply] for reply in replies)
    except CodeUnavailableError:
        # As cardinalities(): the code refused, one SCARD per key instead.
        flat = yield Batch(tuple(Command(("SCARD", key)) for keys in calls for key in keys))
        numbers = iter(int(n) for n in flat)
        counts = iter([next(numbers) for _ in keys] for keys in calls)
    return [next(counts) if group else [] for group in groups]


def pipeline(calls: Sequence[Call]) -> Generator[Batch, list[Any], list[Any]]:
    """Any number of calls in one round trip (none: no round trip)."""
    if not calls:
        return []
    replies = yield Batch(tuple(calls))
    return replies


def gather(ops: Sequence[Op[T]]) -> Op[list[T]]:
    """Run read operations side by side: each step sends every unfinished one's next batch in
    one round trip, so N operations of k steps cost k round trips, not N * k.

    Only for operations that yield plain batches (no Submit/Await). A server error in a step is
    thrown into the combined operation: the reads this serves raise rather than recover.
    """
    results: list[Any] = [None] * len(ops)
    pending: dict[int, Batch] = {}

    def advance(index: int, request: Request) -> None:
        if not isinstance(request, Batch):
            raise TypeError("gather() runs operations that yield plain batches only")
        pending[index] = request

    for index, op in enumerate(ops):
        try:
            advance(index, next(op))
        except StopIteration as done:
            results[index] = done.value
    while pending:
        order = list(pending)
        calls = [call for index in order for call in pending[index].calls]
        replies = yield Batch(tuple(calls))
        position = 0
        for index in order:
            size = len(pending.pop(index).calls)
            part, position = replies[position : position + size], position + size
            try:
                advance(index, ops[index].send(part))
            except StopIteration as done:
                results[index] = done.value
    return results
