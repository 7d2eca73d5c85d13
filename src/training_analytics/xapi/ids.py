"""Identifier rules: which string of a statement becomes a course, module, certificate or learner
id, and how it is made safe for the key layout.

Ids are percent-encoded (RFC 3986, upper-case hex) where the key layout forbids a character
(``:`` braces, glob characters, backslash, whitespace, control characters) and for ``%`` itself,
so an id is never refused for its characters, two different ids never become one, and
``urllib.parse.unquote`` gives the original back.
"""

from __future__ import annotations

import re
from typing import Final, Literal, TypeAlias

from .models import ActorFields as Actor

ActivityIdRule: TypeAlias = Literal["last-segment", "iri"]
LearnerIdentifier: TypeAlias = Literal["account", "mbox", "mbox_sha1sum", "openid"]
LEARNER_IDENTIFIERS: Final[tuple[LearnerIdentifier, ...]] = (
    "account",
    "mbox",
    "mbox_sha1sum",
    "openid",
)

_ESCAPED: Final = re.compile(r"[%:{}*?\[\]\\\s\x00-\x1f\x7f]")


def _escape(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode())


def percent_encode(value: str) -> str:
    """``value`` with every character the key layout forbids, and ``%``, percent-encoded."""
    return _ESCAPED.sub(_escape, value)


def last_segment(iri: str) -> str:
    """The last non-empty path segment of an IRI (query and fragment dropped); for an IRI
    without a path (``urn:...``, ``https://host``), what follows the scheme or the authority."""
    rest = iri.split("#", 1)[0].split("?", 1)[0]
    _, _, rest = rest.partition(":")
    if rest.startswith("//"):
        authority, _, path = rest[2:].partition("/")
        segments = [s for s in path.split("/") if s]
        return segments[-1] if segments else authority
    segments = [s for s in rest.split("/") if s]
    return segments[-1] if segments else rest


def activity_id(iri: str, rule: ActivityIdRule) -> str:
    """The id an activity IRI stands for, percent-encoded."""
    return percent_encode(last_segment(iri) if rule == "last-segment" else iri)


def learner_id(actor: Actor, order: tuple[LearnerIdentifier, ...]) -> str | None:
    """The learner's id from the first identifier of ``order`` the agent has, percent-encoded;
    None for a group (an analytics learner is one person)."""
    if actor.get("objectType") == "Group":
        return None
    for identifier in order:
        if identifier == "account" and "account" in actor:
            return percent_encode(actor["account"]["name"])
        if identifier == "mbox" and "mbox" in actor:
            return percent_encode(actor["mbox"].removeprefix("mailto:"))
        if identifier == "mbox_sha1sum" and "mbox_sha1sum" in actor:
            return actor["mbox_sha1sum"].lower()
        if identifier == "openid" and "openid" in actor:
            return percent_encode(actor["openid"])
    return None
