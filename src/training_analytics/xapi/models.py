"""The xAPI statement data model (1.0.3 and 2.0), as lean pydantic models.

Only what a statement may hold is accepted (unknown properties are refused, as the spec asks of
an LRS); formats that pydantic-core checks in Rust (IRIs, UUIDs, timestamps, durations, mbox) are
declared as constraints rather than Python validators, so that validation stays a small share
of a statement's path: the few rules that need Python (an agent has exactly one identifier, a
score's raw lies between min and max) run once per agent or score.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeAlias
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    TypeAdapter,
    model_validator,
)

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
LanguageMap: TypeAlias = dict[str, str]
Extensions: TypeAlias = dict[IRI, Any]


class XapiModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Account(XapiModel):
    home_page: IRI = Field(alias="homePage")
    name: Annotated[str, StringConstraints(min_length=1)]


class Actor(XapiModel):
    """An Agent (exactly one identifier) or a Group (members, an identifier, or both)."""

    object_type: Literal["Agent", "Group"] | None = Field(default=None, alias="objectType")
    name: str | None = None
    mbox: MBOX | None = None
    mbox_sha1sum: SHA1 | None = None
    openid: IRI | None = None
    account: Account | None = None
    member: list[Actor] | None = None

    @model_validator(mode="after")
    def _one_identifier(self) -> Actor:
        found = sum(
            x is not None for x in (self.mbox, self.mbox_sha1sum, self.openid, self.account)
        )
        if self.object_type == "Group":
            if found > 1:
                raise ValueError("a group has at most one identifier (mbox, mbox_sha1sum...)")
            if found == 0 and not self.member:
                raise ValueError("an anonymous group must list its members")
            return self
        if self.member is not None:
            raise ValueError("only a group has members")
        if found != 1:
            raise ValueError(
                "an agent needs exactly one identifier: mbox, mbox_sha1sum, openid or account"
            )
        return self


class Verb(XapiModel):
    id: IRI
    display: LanguageMap | None = None


class InteractionComponent(XapiModel):
    id: str
    description: LanguageMap | None = None


class ActivityDefinition(XapiModel):
    name: LanguageMap | None = None
    description: LanguageMap | None = None
    type: IRI | None = None
    more_info: IRI | None = Field(default=None, alias="moreInfo")
    extensions: Extensions | None = None
    interaction_type: (
        Literal[
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
        | None
    ) = Field(default=None, alias="interactionType")
    correct_responses_pattern: list[str] | None = Field(
        default=None, alias="correctResponsesPattern"
    )
    choices: list[InteractionComponent] | None = None
    scale: list[InteractionComponent] | None = None
    source: list[InteractionComponent] | None = None
    target: list[InteractionComponent] | None = None
    steps: list[InteractionComponent] | None = None


class Activity(XapiModel):
    object_type: Literal["Activity"] | None = Field(default=None, alias="objectType")
    id: IRI
    definition: ActivityDefinition | None = None

    @property
    def type(self) -> str | None:
        return None if self.definition is None else self.definition.type


class StatementRef(XapiModel):
    object_type: Literal["StatementRef"] = Field(alias="objectType")
    id: UUID


class Score(XapiModel):
    scaled: Annotated[float, Field(ge=-1, le=1)] | None = None
    raw: float | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Score:
        low, high = self.min, self.max
        if low is not None and high is not None and low > high:
            raise ValueError("score min is greater than max")
        if self.raw is not None and (
            (low is not None and self.raw < low) or (high is not None and self.raw > high)
        ):
            raise ValueError("score raw lies outside min..max")
        return self


class Result(XapiModel):
    score: Score | None = None
    success: bool | None = None
    completion: bool | None = None
    response: str | None = None
    duration: Duration | None = None
    extensions: Extensions | None = None


def _as_list(value: Any) -> Any:
    # xAPI 1.0 allows a single activity where a list is meant; 1.0.3 and 2.0 send lists.
    return [value] if isinstance(value, dict) else value


ActivityList: TypeAlias = Annotated[list[Activity], BeforeValidator(_as_list)]


class ContextActivities(XapiModel):
    parent: ActivityList | None = None
    grouping: ActivityList | None = None
    category: ActivityList | None = None
    other: ActivityList | None = None


class Context(XapiModel):
    registration: UUID | None = None
    instructor: Actor | None = None
    team: Actor | None = None
    context_activities: ContextActivities | None = Field(default=None, alias="contextActivities")
    context_agents: list[dict[str, Any]] | None = Field(default=None, alias="contextAgents")
    context_groups: list[dict[str, Any]] | None = Field(default=None, alias="contextGroups")
    revision: str | None = None
    platform: str | None = None
    language: str | None = None
    statement: StatementRef | None = None
    extensions: Extensions | None = None


def _object_kind(value: Any) -> str:
    if isinstance(value, dict):
        kind = value.get("objectType", "Activity")
    else:
        kind = getattr(value, "object_type", None) or "Activity"
    return kind if kind in ("Agent", "Group", "StatementRef", "SubStatement") else "Activity"


class SubStatement(XapiModel):
    object_type: Literal["SubStatement"] = Field(alias="objectType")
    actor: Actor
    verb: Verb
    object: Annotated[
        Annotated[Activity, Tag("Activity")]
        | Annotated[Actor, Tag("Agent")]
        | Annotated[Actor, Tag("Group")]
        | Annotated[StatementRef, Tag("StatementRef")],
        Discriminator(_object_kind),
    ]
    result: Result | None = None
    context: Context | None = None
    timestamp: datetime | None = None
    attachments: list[dict[str, Any]] | None = None


StatementObject: TypeAlias = Annotated[
    Annotated[Activity, Tag("Activity")]
    | Annotated[Actor, Tag("Agent")]
    | Annotated[Actor, Tag("Group")]
    | Annotated[StatementRef, Tag("StatementRef")]
    | Annotated[SubStatement, Tag("SubStatement")],
    Discriminator(_object_kind),
]


class Statement(XapiModel):
    id: UUID | None = None
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
