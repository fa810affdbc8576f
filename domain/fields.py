"""What each field of an event, a command or a state record is, declared once.

A field's annotation carries, beside its Python type, ``typing.Annotated`` markers that
say what the field holds::

    reason: Annotated[str, Personal(), Text(max_length=2000)]

Two kinds of marker:

* what the value is to the client's privacy: :class:`Personal`, :class:`Sensitive`,
  :class:`PersonId`;
* which values it may take: :class:`Text`, :class:`Label`, :class:`Between`,
  :class:`OneOf`, :class:`Items`, :class:`Levels`, :class:`Amount`, :class:`Currency`,
  :class:`Freeform`, :class:`Id`. Times, dates and booleans need none: their type says
  it (a datetime must carry an offset, a date is a calendar day).

Everything that treats fields differently reads these markers and keeps no list of its
own: the domain's checks (domain/checks.py), sealing at rest and blank values after
erasure (domain/storage.py, the fold of ``SubjectErased``), the copy on Kafka
(workers/codec.py), exports (workers/export.py), the sealed parts of the progress
documents (projections/docseal.py) and the API's request schemas and OpenAPI document
(api/schemas.py). tests/unit/test_fields.py holds each of them to this declaration.

Pure: only the standard library.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, ClassVar, TypeVar

# -- privacy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Personal:
    """The client's own words or data: sealed at rest under the client's key, blank once
    the client was erased, emptied on Kafka, dropped from pseudonymized exports."""


@dataclass(frozen=True)
class Sensitive:
    """Sealed like personal data (blank after erasure, emptied on Kafka), but kept in
    pseudonymized exports, where research needs it (the wellbeing scores)."""


#: What a user id looks like (api/accounts.py creates users with it): lower-case letters,
#: digits, '.', '_' and '-', 2-63 characters. No spaces, so no name fits.
USER_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,62}$"


@dataclass(frozen=True)
class PersonId:
    """The user id of a person of the engagement (``role``: coach, client, sponsor, or
    the actor of a command). In clear, since who may see what depends on it; a keyed hash
    in pseudonymized exports. Shaped like a user id (:data:`USER_ID_PATTERN`)."""

    role: str


# -- shapes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """Text as the caller typed it: at most ``max_length`` characters, no NUL; recorded
    without surrounding whitespace; unless ``required`` is False, not blank."""

    max_length: int
    required: bool = True


@dataclass(frozen=True)
class Label:
    """A short code such as a version ('4.0', '2024', 'Form-M'): letters and digits,
    joined by single '.', '_', '-' or '+'. No spaces, so no sentence fits."""

    max_length: int
    PATTERN: ClassVar[str] = r"^[0-9A-Za-z]+(?:[._+-][0-9A-Za-z]+)*$"


@dataclass(frozen=True)
class Between:
    """A whole number from ``low`` to ``high``, both included (never a bool)."""

    low: int
    high: int


@dataclass(frozen=True)
class OneOf:
    """One of a vocabulary's values: the members of an enum, or the values listed."""

    choices: type[StrEnum] | tuple[Any, ...]

    @property
    def values(self) -> tuple[Any, ...]:
        """The allowed values (an enum's member values)."""
        if isinstance(self.choices, tuple):
            return self.choices
        return tuple(member.value for member in self.choices)


@dataclass(frozen=True)
class Items:
    """A list's own rules: at least ``min_items`` items; with ``distinct`` none twice
    (ignoring case with ``ignore_case``). ``noun`` names one item in messages."""

    min_items: int = 0
    distinct: bool = False
    ignore_case: bool = False
    noun: str = "item"


@dataclass(frozen=True)
class Levels:
    """A mapping from each level of a scale to its description: exactly these levels
    (a goal's Goal Attainment Scale, -2..+2)."""

    levels: tuple[str, ...]


@dataclass(frozen=True)
class Amount:
    """Money: an exact decimal within the bounds of ``domain.values.Money`` (never
    negative), in the currency held by the field ``currency``; more than zero when
    ``positive_for`` names what it pays ("an invoice"). A decimal string on the wire,
    never a float."""

    currency: str = "currency"
    positive_for: str = ""


@dataclass(frozen=True)
class Share:
    """A share from 0 to 1 (how much of an outcome is due to the coaching, how sure one
    is), within the bounds of ``domain.values.fraction``. A decimal string on the wire."""


@dataclass(frozen=True)
class Currency:
    """An ISO 4217 currency code such as 'EUR'."""


@dataclass(frozen=True)
class Freeform:
    """Free-form JSON: an object with at least one key, nested at most ``max_depth``
    levels deep, at most ``max_bytes`` long as compact UTF-8 JSON."""

    max_depth: int
    max_bytes: int


@dataclass(frozen=True)
class Id:
    """The id of something inside the engagement (a session, a goal, ...): a UUID."""

    kind: str


@dataclass(frozen=True)
class FromState:
    """Copied from the engagement when the event is recorded (the coach handing over),
    not given by the caller: not checked again."""


# -- fields every pillar uses ----------------------------------------------------------

#: Why something was done, in the coach's or client's words (required).
Reason = Annotated[str, Personal(), Text(max_length=2000)]
#: Why something was done, when saying so is optional.
OptionalReason = Annotated[str, Personal(), Text(max_length=2000, required=False)]
#: A few paragraphs in the client's or the coach's words (a vision, an obstacle, a win).
Paragraphs = Annotated[str, Personal(), Text(max_length=5000)]
#: The same, when it may be left empty.
OptionalParagraphs = Annotated[str, Personal(), Text(max_length=5000, required=False)]
CurrencyCode = Annotated[str, Currency()]
CoachId = Annotated[str, PersonId("coach")]
ClientId = Annotated[str, PersonId("client")]
SponsorId = Annotated[str, PersonId("sponsor")]


# -- reading declarations --------------------------------------------------------------

M = TypeVar("M")


@dataclass(frozen=True)
class Declared:
    """One field as declared: its name, its type (without ``None``) and its markers.

    ``item`` is the declaration of a list's items or a mapping's values, when those
    carry markers of their own.
    """

    name: str
    type: Any
    optional: bool
    markers: tuple[object, ...]
    item: Declared | None = None

    def get(self, kind: type[M]) -> M | None:
        """The marker of this kind, or None."""
        for marker in self.markers:
            if isinstance(marker, kind):
                return typing.cast(M, marker)
        return None

    def has(self, kind: type[object]) -> bool:
        """Whether the field carries a marker of this kind."""
        return self.get(kind) is not None

    @property
    def origin(self) -> Any:
        """``list``, ``dict`` or the plain type itself."""
        return typing.get_origin(self.type) or self.type

    @property
    def sealed(self) -> bool:
        """Stored encrypted under the client's key (personal or sensitive)."""
        return self.has(Personal) or self.has(Sensitive)

    def blank(self) -> Any:
        """The empty value this field reads as once it cannot be opened."""
        return blank_of(self.type)


def blank_of(hint: Any) -> Any:
    """The empty value of a type: ``""``, ``[]``, ``{}``, or None for anything else."""
    origin = typing.get_origin(hint) or hint
    if origin in (list, tuple):
        return []
    if origin is dict:
        return {}
    if hint is str:
        return ""
    return None


def _plain(hint: Any) -> tuple[Any, bool]:
    """A plain type hint without ``None``, and whether ``None`` was allowed."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) == 1:
            return options[0], True
    return hint, False


def _markers(hint: Any) -> tuple[Any, tuple[object, ...]]:
    """A hint's markers (from ``Annotated``, also inside ``X | None``) and what remains."""
    markers: list[object] = []
    while True:
        origin = typing.get_origin(hint)
        if origin is Annotated:
            hint, *extra = typing.get_args(hint)
            markers.extend(extra)
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(hint) if a is not type(None)]
            if len(options) != 1:
                return hint, tuple(markers)
            hint = options[0]
        else:
            return hint, tuple(markers)


def _declared(name: str, annotated: Any, plain: Any) -> Declared:
    inner, markers = _markers(annotated)
    base, optional = _plain(plain)
    item = None
    inner_args, base_args = typing.get_args(inner), typing.get_args(base)
    if typing.get_origin(base) is list and base_args:
        item = _declared(name, inner_args[0], base_args[0])
    elif typing.get_origin(base) is dict and len(base_args) == 2:
        item = _declared(name, inner_args[1], base_args[1])
    if item is not None and not item.markers:
        item = None
    return Declared(name, base, optional, markers, item)


@cache
def declaration(cls: type) -> Mapping[str, Declared]:
    """Every field of a dataclass (an event, a command, a record) or an annotated class
    (the engagement's state), as declared, in declaration order.

    A command names the event it records in ``EVENT``; each of its fields that the event
    has too is declared there, once (the command's own hint only says whether it may
    be left out).
    """
    annotated = typing.get_type_hints(cls, include_extras=True)
    plain = typing.get_type_hints(cls)
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
    else:
        names = [n for n, h in plain.items() if typing.get_origin(h) is not ClassVar]
    own = {name: _declared(name, annotated[name], plain[name]) for name in names}
    event = getattr(cls, "EVENT", None)
    if isinstance(event, type) and event is not cls:
        # A command's field is the field of the same name of the event it records.
        theirs = declaration(event)
        for name, spec in own.items():
            if name not in theirs:
                continue
            if spec.markers:
                msg = f"{cls.__name__}.{name} is declared by {event.__name__}.{name}, not twice"
                raise TypeError(msg)
            own[name] = dataclasses.replace(theirs[name], optional=spec.optional)
    return types.MappingProxyType(own)


@cache
def sealed_fields(cls: type) -> tuple[str, ...]:
    """The fields stored encrypted under the client's key (personal or sensitive)."""
    return tuple(name for name, spec in declaration(cls).items() if spec.sealed)


@cache
def personal_fields(cls: type) -> tuple[str, ...]:
    """The fields holding the client's own words or data."""
    return tuple(name for name, spec in declaration(cls).items() if spec.has(Personal))


@cache
def person_fields(cls: type) -> tuple[str, ...]:
    """The fields holding a person's user id."""
    return tuple(name for name, spec in declaration(cls).items() if spec.has(PersonId))


@cache
def blanks(cls: type) -> Mapping[str, Any]:
    """The empty value of each sealed field (what it reads as after erasure)."""
    return types.MappingProxyType(
        {name: declaration(cls)[name].blank() for name in sealed_fields(cls)}
    )


def erase(record: Any, declared_by: type | None = None) -> None:
    """Blank every sealed field of a state record, and of the records it holds.

    ``declared_by``: the class whose declaration applies (the engagement's state class
    for the aggregate, which mixes it in); by default the record's own class.
    """
    for name, spec in declaration(declared_by or type(record)).items():
        if spec.sealed:
            setattr(record, name, spec.blank())
            continue
        value = getattr(record, name, None)
        children = list(value.values()) if isinstance(value, dict) else value
        if isinstance(children, list):
            for child in children:
                if dataclasses.is_dataclass(child) and not isinstance(child, type):
                    erase(child)
