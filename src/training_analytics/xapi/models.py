"""The xAPI statement data model (1.0.3 and 2.0), as lean pydantic models.

Only what a statement may hold is accepted (unknown properties are refused, as the spec asks of
an LRS); formats that pydantic-core checks in Rust (IRIs, UUIDs, timestamps, durations, mbox) are
declared as constraints rather than Python validators, and a statement's parts are validated
into plain dicts (``TypedDict``), not model instances, so that validation stays a small share of
a statement's path: the few rules that need Python (an agent has exactly one identifier, a
score's raw lies between min and max) run once per agent or score.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal, NotRequired, TypeAlias, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    TypeAdapter,
)

# pydantic needs typing_extensions' TypedDict before Python 3.12.
from typing_extensions import TypedDict

T = TypeVar("T")

#: An absolute IRI: a scheme, ':', then no whitespace and none of the characters RFC 3987
#: excludes. Enough to refuse the usual mistakes (a bare word, a relative path, a space).
IRI_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$"
IRI: TypeAlias = Annotated[str, StringConstraints(pattern=IRI_PATTERN, max_length=2048)]
MBOX: TypeAlias = Annotated[str, StringConstraints(pattern=r"^mailto:[^\s@]+@[^\s@]+$")]
SHA1: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{40}$")]
#: ISO 8601 durations as xAPI uses them (``PT1H30M5.5S``, ``P1DT2H``, ``P2W``).
DURATION_PATTERN: Final = (
    r"^P(?:\d+(?:\.\d+)?W|(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?D)?"
    r"(?:T(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?)$"
)
Duration: TypeAlias = Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]
VERSION_PATTERN: Final = r"^(?:1\.0|2\.0)(?:\.\d+)?$"
#: A statement id stays text (lower-cased by the caller): a uuid.UUID costs a conversion back.
StatementId: TypeAlias = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ),
]
LanguageMap: TypeAlias = dict[str, str]
Extensions: TypeAlias = dict[IRI, Any]


_FORBID: Final = ConfigDict(extra="forbid")


def _forbid(cls: type[T]) -> type[T]:
    # Unknown properties are refused, as the spec asks of an LRS.
    cls.__pydantic_config__ = _FORBID  # type: ignore[attr-defined]
    return cls


@_forbid
class Account(TypedDict):
    homePage: IRI
    name: Annotated[str, StringConstraints(min_length=1)]


@_forbid
class Member(TypedDict, total=False):
    """A group's member: an agent."""

    objectType: Literal["Agent"]
    name: str
    mbox: MBOX
    mbox_sha1sum: SHA1
    openid: IRI
    account: Account


_IDENTIFIERS: Final = ("mbox", "mbox_sha1sum", "openid", "account")


def _one_identifier(actor: Any) -> Any:
    """An agent has exactly one identifier; a group at most one, and members if it has none."""
    found = sum(key in actor for key in _IDENTIFIERS)
    if actor.get("objectType") == "Group":
        if found > 1:
            raise ValueError("a group has at most one identifier (mbox, mbox_sha1sum...)")
        if found == 0 and not actor.get("member"):
            raise ValueError("an anonymous group must list its members")
        return actor
    if "member" in actor:
        raise ValueError("only a group has members")
    if found != 1:
        raise ValueError(
            "an agent needs exactly one identifier: mbox, mbox_sha1sum, openid or account"
        )
    return actor


@_forbid
class ActorFields(TypedDict, total=False):
    objectType: Literal["Agent", "Group"]
    name: str
    mbox: MBOX
    mbox_sha1sum: SHA1
    openid: IRI
    account: Account
    member: list[Annotated[Member, AfterValidator(_one_identifier)]]


Actor: TypeAlias = Annotated[ActorFields, AfterValidator(_one_identifier)]
"""An Agent (exactly one identifier) or a Group (members, an identifier, or both)."""


@_forbid
class Verb(TypedDict):
    id: IRI
    display: NotRequired[LanguageMap]


@_forbid
class InteractionComponent(TypedDict):
    id: str
    description: NotRequired[LanguageMap]


@_forbid
class ActivityDefinition(TypedDict, total=False):
    name: LanguageMap
    description: LanguageMap
    type: IRI
    moreInfo: IRI
    extensions: Extensions
    interactionType: Literal[
        "true-false",
        "choice",
        "fill-in",
        "long-fill-in",
        "matching",
        "performance",
        "sequencing",
        "likert",
        "numeric",
        "other",
    ]
    correctResponsesPattern: list[str]
    choices: list[InteractionComponent]
    scale: list[InteractionComponent]
    source: list[InteractionComponent]
    target: list[InteractionComponent]
    steps: list[InteractionComponent]


@_forbid
class Activity(TypedDict):
    objectType: NotRequired[Literal["Activity"]]
    id: IRI
    definition: NotRequired[ActivityDefinition]


@_forbid
class StatementRef(TypedDict):
    objectType: Literal["StatementRef"]
    id: UUID


def _ordered(score: Any) -> Any:
    low, high, raw = score.get("min"), score.get("max"), score.get("raw")
    if low is not None and high is not None and low > high:
        raise ValueError("score min is greater than max")
    if raw is not None and ((low is not None and raw < low) or (high is not None and raw > high)):
        raise ValueError("score raw lies outside min..max")
    return score


@_forbid
class ScoreFields(TypedDict, total=False):
    scaled: Annotated[float, Field(ge=-1, le=1)]
    raw: float
    min: float
    max: float


Score: TypeAlias = Annotated[ScoreFields, AfterValidator(_ordered)]


@_forbid
class Result(TypedDict, total=False):
    score: Score
    success: bool
    completion: bool
    response: str
    duration: Duration
    extensions: Extensions


def _as_list(value: Any) -> Any:
    # xAPI 1.0 allows a single activity where a list is meant; 1.0.3 and 2.0 send lists.
    return [value] if isinstance(value, dict) else value


ActivityList: TypeAlias = Annotated[list[Activity], BeforeValidator(_as_list)]


@_forbid
class ContextActivities(TypedDict, total=False):
    parent: ActivityList
    grouping: ActivityList
    category: ActivityList
    other: ActivityList


@_forbid
class Context(TypedDict, total=False):
    registration: UUID
    instructor: Actor
    team: Actor
    contextActivities: ContextActivities
    contextAgents: list[dict[str, Any]]
    contextGroups: list[dict[str, Any]]
    revision: str
    platform: str
    language: str
    statement: StatementRef
    extensions: Extensions


def object_kind(value: Any) -> str:
    """What a statement's object is: Activity (the default), Agent, Group, StatementRef or
    SubStatement."""
    kind = value.get("objectType", "Activity") if isinstance(value, dict) else "Activity"
    return kind if kind in ("Agent", "Group", "StatementRef", "SubStatement") else "Activity"


_SUB_OBJECT: TypeAlias = Annotated[
    Annotated[Activity, Tag("Activity")]
    | Annotated[Actor, Tag("Agent")]
    | Annotated[Actor, Tag("Group")]
    | Annotated[StatementRef, Tag("StatementRef")],
    Discriminator(object_kind),
]


@_forbid
class SubStatement(TypedDict):
    objectType: Literal["SubStatement"]
    actor: Actor
    verb: Verb
    object: _SUB_OBJECT
    result: NotRequired[Result]
    context: NotRequired[Context]
    timestamp: NotRequired[datetime]
    attachments: NotRequired[list[dict[str, Any]]]


StatementObject: TypeAlias = Annotated[
    Annotated[Activity, Tag("Activity")]
    | Annotated[Actor, Tag("Agent")]
    | Annotated[Actor, Tag("Group")]
    | Annotated[StatementRef, Tag("StatementRef")]
    | Annotated[SubStatement, Tag("SubStatement")],
    Discriminator(object_kind),
]


class Statement(BaseModel):
    """A statement. Its parts are validated into plain dicts (``TypedDict``s, keys as in the
    JSON): building model instances for every part cost twice as much."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: StatementId | None = None
    actor: Actor
    verb: Verb
    object: StatementObject
    result: Result | None = None
    context: Context | None = None
    timestamp: datetime | None = None
    """When it happened; a timestamp without a zone is read as UTC."""
    stored: datetime | None = None
    authority: Actor | None = None
    version: Annotated[str, StringConstraints(pattern=VERSION_PATTERN)] | None = None
    attachments: list[dict[str, Any]] | None = None


STATEMENTS: Final = TypeAdapter(list[Statement])
"""A JSON array of statements, validated in one pydantic-core call."""
