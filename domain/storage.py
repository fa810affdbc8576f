"""How engagement events are stored: personal fields sealed, every event hash-linked.

Two layers sit between the aggregate and eventsourcing's recorder:

* ``SealingMapper`` encrypts an event's personal and sensitive fields (declared
  ``Personal`` or ``Sensitive``: domain/fields.py) under the client's data key
  (domain/keys.py) into one ``_sealed`` envelope, bound to the event's engagement id
  and version; a snapshot's whole state is sealed the same way. Decoding opens the
  envelope; once the client's key was destroyed, those fields read as empty (``""``,
  ``[]``, ``{}`` or None).
* ``ChainedEventStore`` prefixes each stored event with a hash link:
  ``link(v) = SHA-256("coachlog-chain-v1" ‖ link(v−1) ‖ id ‖ v ‖ topic ‖ stored bytes)``,
  ``link(0)`` = 32 zero bytes. The link covers exactly what is stored (ciphertext
  included), so the chain verifies without any key, also after an erasure; changing a
  byte, removing or reordering events breaks it at that version (domain/audit.py).
"""

from __future__ import annotations

import hashlib
import threading
import typing
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import CanSnapshotAggregate, DomainEventProtocol
from eventsourcing.persistence import (
    EventStore,
    Mapper,
    MapperDeserialisationError,
    Notification,
    Recording,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import get_topic, resolve_topic

from domain.errors import ClientErased
from domain.event import EngagementEvent
from domain.fields import blanks, sealed_fields
from domain.keys import CryptoError, KeyRing

#: Prefix of a chained stored event: magic, then the 32-byte link, then the payload.
MAGIC = b"\x00CL1"
LINK_SIZE = 32
GENESIS = bytes(LINK_SIZE)
_HEADER = len(MAGIC) + LINK_SIZE


def chain_link(
    previous: bytes, originator_id: UUID, version: int, topic: str, payload: bytes
) -> bytes:
    """The link of one stored event, over its content and its predecessor's link."""
    digest = hashlib.sha256(b"coachlog-chain-v1\x00")
    digest.update(previous)
    digest.update(originator_id.bytes)
    digest.update(version.to_bytes(8, "big"))
    digest.update(topic.encode() + b"\x00")
    digest.update(payload)
    return digest.digest()


def split_state(state: bytes) -> tuple[bytes | None, bytes]:
    """(link, payload) of a stored event's state; link None for an unchained one."""
    if state[: len(MAGIC)] == MAGIC and len(state) >= _HEADER:
        return state[len(MAGIC) : _HEADER], state[_HEADER:]
    return None, state


def as_uuid(value: UUID | str) -> UUID:
    """An originator id as a UUID (the SQLite recorder hands back strings)."""
    return value if isinstance(value, UUID) else UUID(str(value))


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict | tuple) and not value)


class SealingMapper(Mapper[UUID]):
    """eventsourcing's Mapper, sealing personal fields under the client's key."""

    def __init__(
        self,
        transcoder: Transcoder,
        keys: KeyRing | None = None,
        open_only: frozenset[type] | None = None,
    ) -> None:
        """``open_only``: decrypt the sealed fields of these event classes only; the
        others read as blank (their envelope kept), which spares a projection that
        needs no personal text the cost of decrypting it."""
        super().__init__(transcoder)
        self.keys = keys
        self.open_only = open_only

    def prefetch(self, originator_ids: Iterable[UUID | str]) -> None:
        """Load the keys of many engagements at once, before decoding their events."""
        if self.keys is None:
            return
        ids = []
        for originator_id in originator_ids:
            try:
                ids.append(as_uuid(originator_id))
            except ValueError:
                continue  # not an engagement id (a foreign Kafka record): nothing to load
        self.keys.prefetch(ids)

    def reading_only(self, classes: frozenset[type]) -> SealingMapper:
        """A mapper for readers that need the sealed fields of ``classes`` only."""
        return SealingMapper(self.transcoder, self.keys, open_only=classes)

    def _ring(self) -> KeyRing:
        if self.keys is None:  # pragma: no cover - wiring error
            msg = "the mapper has no key ring"
            raise RuntimeError(msg)
        return self.keys

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        topic = get_topic(domain_event.__class__)
        event_state = dict(vars(domain_event))
        event_state.pop("_sealed", None)
        originator_id = event_state.pop("originator_id")
        originator_version = event_state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            event_state["class_version"] = class_version
        context = f"{originator_id}/{originator_version}"
        if isinstance(domain_event, EngagementEvent):
            self._seal_fields(domain_event, event_state, context)
        elif isinstance(domain_event, CanSnapshotAggregate):
            self._seal_snapshot(originator_id, event_state, context)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=self.transcoder.encode(event_state),
        )

    def _seal_fields(self, event: EngagementEvent, state: dict[str, Any], context: str) -> None:
        picked = {
            name: state.pop(name)
            for name in sealed_fields(type(event))
            if name in state and not _empty(state[name])
        }
        if not picked:
            return
        ring = self._ring()
        client_id = state.get("client_id")
        if event.originator_version == 1 and isinstance(client_id, str):
            key_id = ring.key_for_new_engagement(event.originator_id, event.firm_id, client_id)
        else:
            found = ring.key_of(event.originator_id)
            if found is None:
                msg = f"engagement {event.originator_id} has no data key"
                raise CryptoError(msg)
            key_id = found
        envelope = ring.seal(key_id, context, self.transcoder.encode(picked))
        if envelope is None:
            raise ClientErased(f"the client of engagement {event.originator_id} was erased")
        state["_sealed"] = {**envelope, "f": sorted(picked)}

    def _seal_snapshot(self, originator_id: UUID, state: dict[str, Any], context: str) -> None:
        ring = self._ring()
        key_id = ring.key_of(originator_id)
        if key_id is None:
            return  # an engagement without personal data: nothing to protect
        envelope = ring.seal(key_id, context, self.transcoder.encode(state.pop("state")))
        if envelope is None:
            msg = f"the client of engagement {originator_id} was erased: no snapshot"
            raise CryptoError(msg)
        state["_sealed"] = envelope

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        _, payload = split_state(stored_event.state)
        context = f"{stored_event.originator_id}/{stored_event.originator_version}"
        try:
            event_state: dict[str, Any] = self.transcoder.decode(payload)
            envelope = event_state.pop("_sealed", None)
            if (
                envelope is not None
                and self.open_only is not None
                and cls not in self.open_only
                and not issubclass(cls, CanSnapshotAggregate)
            ):
                empty = blanks(cls)
                event_state.update({name: empty.get(name) for name in envelope["f"]})
                event_state["_sealed"] = envelope
            elif envelope is not None:
                plain = self._ring().open(envelope, context)
                if issubclass(cls, CanSnapshotAggregate):
                    if plain is None:
                        msg = "snapshot sealed under a destroyed key"
                        raise CryptoError(msg)
                    event_state["state"] = self.transcoder.decode(plain)
                elif plain is None:
                    empty = blanks(cls)
                    event_state.update({name: empty.get(name) for name in envelope["f"]})
                else:
                    event_state.update(self.transcoder.decode(plain))
                    event_state["_sealed"] = envelope
        except CryptoError:
            raise
        except Exception as error:
            msg = (
                f"Failed to deserialise stored event {stored_event.topic} of "
                f"{stored_event.originator_id} v{stored_event.originator_version}: {error}"
            )
            raise MapperDeserialisationError(msg) from error
        event_state["originator_id"] = as_uuid(stored_event.originator_id)
        event_state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", event_state)
        return typing.cast(DomainEventProtocol[UUID], domain_event)


def prefetch_keys(mapper: Mapper[UUID], originator_ids: Iterable[UUID | str]) -> None:
    """Prefetch the keys of many engagements if ``mapper`` seals (else nothing)."""
    if isinstance(mapper, SealingMapper):
        mapper.prefetch(originator_ids)


def open_sealed(
    mapper: Mapper[UUID], event: EngagementEvent, envelope: dict[str, Any] | None
) -> None:
    """Fill an event's empty personal fields from a sealed envelope (a Kafka copy)."""
    if envelope is None or not isinstance(mapper, SealingMapper):
        return
    if mapper.open_only is not None and type(event) not in mapper.open_only:
        return
    context = f"{event.originator_id}/{event.originator_version}"
    plain = mapper._ring().open(envelope, context)
    if plain is not None:
        event.__dict__.update(mapper.transcoder.decode(plain))
        event.__dict__["_sealed"] = envelope


@dataclass(frozen=True)
class Prepared:
    """One save, ready to store: its domain events and their stored (sealed, linked) form."""

    events: list[DomainEventProtocol[UUID]]
    stored: list[StoredEvent]


class ChainedEventStore(EventStore[UUID]):
    """An event store that hash-links each engagement's events as they are stored."""

    CACHE_SIZE = 20_000

    def __init__(self, mapper: Mapper[UUID], recorder: Any) -> None:
        super().__init__(mapper, recorder)
        self._links: OrderedDict[tuple[UUID, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def _remember(self, originator_id: UUID, version: int, link: bytes) -> None:
        with self._lock:
            self._links[(originator_id, version)] = link
            while len(self._links) > self.CACHE_SIZE:
                self._links.popitem(last=False)

    def _previous_link(self, originator_id: UUID, version: int) -> bytes:
        if version == 1:
            return GENESIS
        cached = self._links.get((originator_id, version - 1))
        if cached is not None:
            return cached
        rows = self.recorder.select_events(originator_id, lte=version - 1, desc=True, limit=1)
        if not rows:
            return GENESIS  # nothing before it: audit verify reports the gap
        link, _ = split_state(rows[0].state)
        return link if link is not None else GENESIS

    def prepare(self, domain_events: Sequence[DomainEventProtocol[UUID]]) -> Prepared:
        """Encode, seal and link events for storing (raising if any of them cannot be).

        Nothing is written: this is the part of a save that can fail because of what
        the events hold, done before the save joins a transaction shared with others.
        """
        heads: dict[UUID, bytes] = {}
        stored_events = []
        for event in domain_events:
            stored = self.mapper.to_stored_event(event)
            originator_id = as_uuid(stored.originator_id)
            previous = heads.get(originator_id)
            if previous is None:
                previous = self._previous_link(originator_id, stored.originator_version)
            link = chain_link(
                previous, originator_id, stored.originator_version, stored.topic, stored.state
            )
            heads[originator_id] = link
            stored_events.append(
                StoredEvent(
                    originator_id=stored.originator_id,
                    originator_version=stored.originator_version,
                    topic=stored.topic,
                    state=MAGIC + link + stored.state,
                )
            )
        return Prepared(list(domain_events), stored_events)

    def put(
        self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any
    ) -> list[Recording[UUID]]:
        return self.put_prepared([self.prepare(domain_events)], **kwargs)

    def put_prepared(self, prepared: Sequence[Prepared], **kwargs: Any) -> list[Recording[UUID]]:
        """Store prepared saves in one transaction; return their recordings."""
        domain_events = [e for p in prepared for e in p.events]
        stored_events = [s for p in prepared for s in p.stored]
        notification_ids = self.recorder.insert_events(stored_events, **kwargs)
        for stored in stored_events:
            written, _ = split_state(stored.state)
            if written is not None:
                self._remember(as_uuid(stored.originator_id), stored.originator_version, written)
        recordings: list[Recording[UUID]] = []
        if notification_ids:
            for event, stored, notification_id in zip(
                domain_events, stored_events, notification_ids, strict=True
            ):
                recordings.append(
                    Recording(
                        event,
                        Notification(
                            originator_id=stored.originator_id,
                            originator_version=stored.originator_version,
                            topic=stored.topic,
                            state=stored.state,
                            id=notification_id,
                        ),
                    )
                )
        return recordings

    def get(
        self,
        originator_id: UUID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Iterator[DomainEventProtocol[UUID]]:
        stored_events = self.recorder.select_events(
            originator_id=originator_id, gt=gt, lte=lte, desc=desc, limit=limit
        )
        for stored in stored_events:
            link, _ = split_state(stored.state)
            if link is not None:
                self._remember(as_uuid(stored.originator_id), stored.originator_version, link)
            yield self.mapper.to_domain_event(stored)
