"""The personal parts of a progress document, sealed under the client's key at rest.

The progress fold copies a few sealed event fields (domain/fields.py) into its
documents: goal, milestone and commitment titles and the wellbeing scores. ``PARTS``
says where each lands and which event fields it copies; nothing else here names a part.
Before a document is written those parts are moved into one ``_sealed`` envelope
(AES-GCM under the client's data key, bound to the engagement: domain/keys.py); reading
a document opens it again; the fold of ``SubjectErased`` blanks them (:func:`erase`).
After the client was erased the key is gone: the envelope no longer opens. Everything
else — ids, statuses, dates, counts, money, scores — stays in clear for the indexed
columns, lists and group figures.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain import accountability as acc
from domain import goals as gls
from domain import support as sup
from domain.event import EngagementEvent
from domain.fields import blank_of, sealed_fields
from domain.keys import KeyRing

Doc = dict[str, Any]
#: In a part's path: every entry of the mapping at that point.
EACH = "*"


@dataclass(frozen=True)
class Part:
    """A part of a progress document that copies sealed event fields.

    ``path`` runs from the document's top (``EACH`` for every entry of a mapping);
    ``copies`` names, per event class, the sealed fields whose values the fold puts
    there.
    """

    path: tuple[str, ...]
    copies: Mapping[type[EngagementEvent], tuple[str, ...]]

    def __post_init__(self) -> None:
        for event_class, names in self.copies.items():
            loose = set(names) - set(sealed_fields(event_class))
            if loose:
                msg = f"{event_class.__name__} does not seal {sorted(loose)}: see its fields"
                raise TypeError(msg)


PARTS: tuple[Part, ...] = (
    Part(("goals", EACH, "title"), {gls.GoalSet: ("title",), gls.GoalRevised: ("title",)}),
    Part(("goals", EACH, "milestones", EACH, "title"), {gls.MilestoneDefined: ("title",)}),
    Part(("commitments", EACH, "title"), {acc.CommitmentMade: ("title",)}),
    Part(("wellbeing",), {sup.WellbeingChecked: sealed_fields(sup.WellbeingChecked)}),
)

#: The event classes whose sealed fields the progress fold reads.
COPIED_FROM: frozenset[type[EngagementEvent]] = frozenset(
    event_class for part in PARTS for event_class in part.copies
)


def _leaves(node: Any, path: tuple[str, ...], at: tuple[str, ...] = ()) -> Iterator[Any]:
    """(concrete path, value) of every place ``path`` names under ``node``.

    A value found where a mapping with one last key was expected is taken as that key's
    value: documents sealed before the envelope kept whole entries stored a milestone's
    or a commitment's title directly under its id.
    """
    if not path:
        yield at, node
        return
    head, rest = path[0], path[1:]
    if not isinstance(node, dict):
        if len(path) == 1 and at:
            yield (*at, head), node
        return
    for key in list(node) if head == EACH else [head]:
        if key in node:
            yield from _leaves(node[key], rest, (*at, key))


def _put(node: Any, at: tuple[str, ...], value: Any) -> None:
    """Set the value at a concrete path, if every container on the way exists."""
    for key in at[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        node = node[key]
    if isinstance(node, dict) and at[-1] in node:
        node[at[-1]] = value


def _blanked(node: Any, paths: list[tuple[str, ...]]) -> Any:
    """A copy of ``node`` with the places ``paths`` name blanked: the mappings on those
    paths are copied, everything else is shared."""
    if not isinstance(node, dict):
        return node
    copy = dict(node)
    for key, value in node.items():
        rest = [p[1:] for p in paths if p[0] in (key, EACH)]
        if any(not r for r in rest):
            copy[key] = blank_of(type(value))
        elif rest:
            copy[key] = _blanked(value, rest)
    return copy


def _personal(doc: Doc) -> Doc:
    personal: Doc = {}
    for part in PARTS:
        for at, value in _leaves(doc, part.path):
            node = personal
            for key in at[:-1]:
                node = node.setdefault(key, {})
            node[at[-1]] = value
    return personal


def _has_any(doc: Doc) -> bool:
    return any(value for part in PARTS for _, value in _leaves(doc, part.path))


def erase(doc: Doc) -> None:
    """Blank every personal part of a document (the client was erased)."""
    for part in PARTS:
        for at, value in list(_leaves(doc, part.path)):
            _put(doc, at, blank_of(type(value)))


def _context(doc: Doc) -> str:
    return f"{doc['engagement_id']}/progress"


def seal(doc: Doc, keys: KeyRing | None) -> Doc:
    """The document as stored: its personal parts sealed (or, with no key left, gone)."""
    if keys is None or not _has_any(doc):
        return doc
    stored: Doc = _blanked(doc, [part.path for part in PARTS])
    key_id = keys.key_of(UUID(doc["engagement_id"]))
    if key_id is not None:
        envelope = keys.seal(key_id, _context(doc), json.dumps(_personal(doc)).encode())
        if envelope is not None:
            stored["_sealed"] = envelope
    return stored


def unseal(doc: Doc, keys: KeyRing | None) -> Doc:
    """The document as folded and served: its personal parts back in place."""
    envelope = doc.pop("_sealed", None)
    if envelope is None or keys is None:
        return doc
    plain = keys.open(envelope, _context(doc))
    if plain is None:
        return doc  # the client was erased: the parts stay empty
    personal = json.loads(plain)
    for part in PARTS:
        for at, value in _leaves(personal, part.path):
            _put(doc, at, value)
    return doc
