"""Statements from a file: a JSON array, or JSON lines (one statement a line). Pure: it reads
the stream it is given and yields decoded JSON with its position; validation and mapping are
the callers' (``statements.import_statements``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any, NamedTuple


class Unreadable(NamedTuple):
    """A line (or the whole array) that is not JSON: reported by its position."""

    message: str


def read_statements(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """(position, decoded JSON) per statement: the line number for JSON lines, the index + 1 in
    a JSON array (a file whose first non-blank character is ``[``). A line that does not parse
    gives an :class:`Unreadable` in place of its statement."""
    head = stream.read(1)
    while head and head.isspace():
        head = stream.read(1)
    if head == b"[":
        try:
            items = json.loads(head + stream.read())
        except ValueError as exc:
            yield 1, Unreadable(f"the file is not a JSON array ({exc})")
            return
        yield from enumerate(items, 1)
        return
    first = head + stream.readline()
    for number, line in enumerate([first], 1):
        if line.strip():
            yield number, _decoded(line)
    for number, line in enumerate(stream, 2):
        if line.strip():
            yield number, _decoded(line)


def _decoded(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError as exc:
        return Unreadable(f"not JSON ({exc})")
