"""The personal parts of a progress document, sealed under the client's key at rest.

A progress document keeps a little personal text and sensitive data: goal, milestone
and commitment titles and the wellbeing scores. Before a document is written they are
moved into one ``_sealed`` envelope (AES-GCM under the client's data key, bound to the
engagement: domain/keys.py); reading a document opens it again. After the client was
erased the key is gone: the envelope no longer opens (and the fold of SubjectErased
has emptied those parts anyway). Everything else — ids, statuses, dates, counts, money,
scores — stays in clear for the indexed columns, lists and group figures.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from domain.keys import KeyRing

Doc = dict[str, Any]


def _context(doc: Doc) -> str:
    return f"{doc['engagement_id']}/progress"


def _personal(doc: Doc) -> Doc:
    return {
        "goals": {
            goal_id: {
                "title": goal["title"],
                "milestones": {m_id: m["title"] for m_id, m in goal["milestones"].items()},
            }
            for goal_id, goal in doc["goals"].items()
        },
        "commitments": {c_id: c["title"] for c_id, c in doc["commitments"].items()},
        "wellbeing": doc["wellbeing"],
    }


def _has_any(personal: Doc) -> bool:
    return bool(
        personal["wellbeing"]
        or any(c for c in personal["commitments"].values())
        or any(g["title"] or any(g["milestones"].values()) for g in personal["goals"].values())
    )


def seal(doc: Doc, keys: KeyRing | None) -> Doc:
    """The document as stored: its personal parts sealed (or, with no key left, gone)."""
    if keys is None:
        return doc
    personal = _personal(doc)
    if not _has_any(personal):
        return doc
    stored = dict(doc)
    stored["goals"] = {
        goal_id: {
            **goal,
            "title": "",
            "milestones": {m_id: {**m, "title": ""} for m_id, m in goal["milestones"].items()},
        }
        for goal_id, goal in doc["goals"].items()
    }
    stored["commitments"] = {c_id: {**c, "title": ""} for c_id, c in doc["commitments"].items()}
    stored["wellbeing"] = []
    key_id = keys.key_of(UUID(doc["engagement_id"]))
    if key_id is not None:
        envelope = keys.seal(key_id, _context(doc), json.dumps(personal).encode())
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
    for goal_id, parts in personal["goals"].items():
        goal = doc["goals"].get(goal_id)
        if goal is None:
            continue
        goal["title"] = parts["title"]
        for m_id, title in parts["milestones"].items():
            if m_id in goal["milestones"]:
                goal["milestones"][m_id]["title"] = title
    for c_id, title in personal["commitments"].items():
        if c_id in doc["commitments"]:
            doc["commitments"][c_id]["title"] = title
    doc["wellbeing"] = personal["wellbeing"]
    return doc
