"""The body of ``POST /events``: one event (a JSON object), a JSON array of them, or JSON lines
(``application/x-ndjson``). Parsing only: each event is checked by ``record_each``, which
rejects a malformed one by its index without stopping the others."""

from __future__ import annotations

import json
from typing import Any, Final

from fastapi import Request
from pydantic import TypeAdapter, ValidationError

from ..types import TrainingEvent
from .problems import ApiError
from .settings import ServiceSettings

JSON_LINES: Final = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
# A batch whose events are all well-formed is parsed into models in one call (pydantic-core);
# about three times cheaper per event than parsing JSON, then checking each event on its own.
_EVENTS: Final = TypeAdapter(list[TrainingEvent])


class UnparsableLine:
    """Stands for a JSON line that does not parse: ``record_each`` rejects it (not an event)
    and the reason shows in its message."""

    def __init__(self, line: int, error: Exception) -> None:
        self.text = f"line {line} is not JSON ({error})"

    def __repr__(self) -> str:
        return self.text


async def read_events(request: Request, settings: ServiceSettings) -> list[Any]:
    body = await request.body()
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    events: list[Any]
    if media in JSON_LINES:
        events = []
        for number, line in enumerate(body.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            # RecursionError: nesting deeper than the parser's stack (a hostile line)
            except (ValueError, RecursionError) as exc:
                events.append(UnparsableLine(number, exc))
    elif media == "application/json" or media.endswith("+json"):
        if body[:1] == b"[":
            try:
                events = _EVENTS.validate_json(body)
            except ValidationError:
                pass  # some event is malformed: each is checked on its own below
            else:
                return _bounded(events, settings)
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, "json", "Malformed JSON", "the body is not valid JSON") from exc
        if isinstance(document, dict):
            events = [document]
        elif isinstance(document, list):
            events = document
        else:
            raise ApiError(
                422, "events", "Invalid input", "the body must be an event or an array of events"
            )
    else:
        raise ApiError(
            415,
            "media-type",
            "Unsupported media type",
            "send application/json (an event or an array) or application/x-ndjson",
        )
    return _bounded(events, settings)


def _bounded(events: list[Any], settings: ServiceSettings) -> list[Any]:
    if len(events) > settings.max_batch_events:
        raise ApiError(
            413,
            "batch-too-large",
            "Content too large",
            f"{len(events)} events; at most {settings.max_batch_events} per request",
        )
    return events
