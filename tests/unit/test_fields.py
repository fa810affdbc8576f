"""One declaration per field: each part that treats fields differently follows it.

The engagement is driven through every use case on the real application service kept
in memory (no database), then each derived behaviour — sealing, Kafka redaction,
exports, erasure, the read model's sealed parts — is held to what domain/fields.py
declares, and nothing stored in clear can hold a sentence.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from api.schemas import ANY_TEXT_PATTERN, FILLED_TEXT_PATTERN, WHITESPACE
from domain.application import Engagements
from domain.checks import check
from domain.commands import (
    ENGAGEMENT_COMMANDS,
    CheckWellbeing,
    Command,
    DefineMilestone,
    EraseSubject,
    MakeCommitment,
    OpenEngagement,
    SetGoal,
)
from domain.context import CommandContext
from domain.engagement import EVENT_CLASSES, PILLARS, Engagement
from domain.errors import InvalidValue
from domain.event import EngagementEvent
from domain.fields import (
    Currency,
    Freeform,
    FromState,
    Id,
    Label,
    Levels,
    OneOf,
    PersonId,
    Sensitive,
    Text,
    blanks,
    declaration,
    person_fields,
    personal_fields,
    sealed_fields,
)
from domain.goals import SmartGoal
from domain.state import STATE_RECORDS, EngagementState
from domain.storage import split_state
from projections import docseal, progress
from tests.conftest import FIRM
from tests.unit.helpers import a_goal, in_days, open_engagement
from tests.unit.test_catalogue import Driver, drive_a_whole_engagement
from workers.codec import encode
from workers.export import Pseudonymizer, pseudonymized_reader, row

SENTENCE = "Jane Doe told me about her panic attacks"
SHAPES = (Text, Label, PersonId, Id, OneOf, Currency)


class Witness(Engagements):
    """The application service, noting the log as it reads just before the erasure."""

    before_erasure: list[EngagementEvent]

    def execute(self, ctx: CommandContext, command: Command, *args: Any, **kw: Any) -> Any:
        if isinstance(command, EraseSubject):
            self.before_erasure = list(events_of(self))
        return super().execute(ctx, command, *args, **kw)


def events_of(app: Engagements) -> Iterator[EngagementEvent]:
    for notification in app.recorder.select_notifications(start=1, limit=10**6):
        event = app.mapper.to_domain_event(notification)
        if isinstance(event, EngagementEvent):
            yield event


@pytest.fixture(scope="module")
def driven() -> Iterator[tuple[Witness, Driver]]:
    """One engagement through every use case, erasure last, in memory."""
    app = Witness(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    ctx = CommandContext(actor_id="coach-ada", actor_role="coach", firm_id=FIRM)
    try:
        yield app, drive_a_whole_engagement(app, ctx)
    finally:
        app.close()


def payload_fields(event_class: type[EngagementEvent]) -> list[str]:
    skip = {"originator_id", "originator_version", "originator_topic", "timestamp"}
    return [
        name
        for name in declaration(event_class)
        if name not in skip and name not in EngagementEvent.METADATA
    ]


def strings_in(value: Any, keys: bool = True) -> set[str]:
    """Every string in a plain value: list items, mapping values and (with ``keys``)
    mapping keys."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        found = {s for v in value.values() for s in strings_in(v, keys)}
        return found | ({str(k) for k in value} if keys else set())
    if isinstance(value, list | tuple):
        return {s for v in value for s in strings_in(v, keys)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return strings_in(dataclasses.asdict(value), keys)
    return set()


def with_blanks(event: EngagementEvent, names: tuple[str, ...]) -> EngagementEvent:
    empty = blanks(type(event))
    return dataclasses.replace(event, **{name: empty[name] for name in names})


# -- the declaration itself ------------------------------------------------------------


@pytest.mark.parametrize("event_class", EVENT_CLASSES, ids=lambda c: c.__name__)
def test_nothing_an_event_keeps_in_clear_can_hold_a_sentence(
    event_class: type[EngagementEvent],
) -> None:
    """Every free-text field is sealed, or refused by its shape (id, vocabulary, label)."""
    for name in payload_fields(event_class):
        spec = declaration(event_class)[name]
        if spec.sealed:
            continue
        for value in (SENTENCE, [SENTENCE], {"note": SENTENCE}):
            with pytest.raises(InvalidValue):
                check(spec, value, {"currency": "EUR"})


def _declared_types() -> list[type]:
    return [*EVENT_CLASSES, *ENGAGEMENT_COMMANDS, OpenEngagement, SmartGoal]


@pytest.mark.parametrize("cls", _declared_types(), ids=lambda c: c.__name__)
def test_every_text_list_and_mapping_says_what_it_holds(cls: type) -> None:
    for name, spec in declaration(cls).items():
        if name in EngagementEvent.METADATA or name == "originator_topic":
            continue
        if spec.origin is list:
            assert spec.item is not None, f"{cls.__name__}.{name}: what are its items?"
        if spec.origin is dict:
            assert spec.has(Freeform) or spec.has(Levels), f"{cls.__name__}.{name}"
        item = spec.item or spec
        if item.type is str:
            shapes = [m for m in item.markers if isinstance(m, SHAPES)]
            assert len(shapes) == 1, f"{cls.__name__}.{name} declares {shapes}"


@pytest.mark.parametrize(
    "command", [*ENGAGEMENT_COMMANDS, OpenEngagement], ids=lambda c: c.__name__
)
def test_a_command_field_is_the_field_of_the_event_it_records(command: type[Command]) -> None:
    theirs = declaration(command.EVENT)
    for name, spec in declaration(command).items():
        if spec.type in (SmartGoal,) or name == "engagement_id":
            continue
        assert name in theirs, f"{command.__name__}.{name} is not a field of its event"
        assert (spec.type, spec.markers, spec.item) == (
            theirs[name].type,
            theirs[name].markers,
            theirs[name].item,
        )


def test_each_pillar_module_holds_its_events_commands_and_methods() -> None:
    """The aggregate and the catalogues gather what the pillar modules define: an event,
    its command and the method recording it sit in one module, and nowhere else."""
    events = [c for m in PILLARS for c in vars(m).values() if _defined(c, m, EngagementEvent)]
    commands = [c for m in PILLARS for c in vars(m).values() if _defined(c, m, Command)]
    assert list(EVENT_CLASSES) == events
    assert list(ENGAGEMENT_COMMANDS) == commands
    for event_class in events:
        assert getattr(Engagement, event_class.__name__) is event_class
    for command in [*commands, OpenEngagement]:
        module = command.__module__
        assert command.EVENT.__module__ == module, command.__name__
        method = getattr(Engagement, getattr(command, "METHOD", "open"))
        assert method.__module__ in (module, Engagement.__module__), command.__name__


def _defined(value: object, module: Any, kind: type) -> bool:
    return (
        isinstance(value, type) and issubclass(value, kind) and value.__module__ == module.__name__
    )


def test_each_command_records_the_event_it_names(driven: tuple[Witness, Driver]) -> None:
    app, driver = driven
    recorded = [type(e) for e in events_of(app)]
    # The opening, then one event per command in the order they ran.
    assert recorded[0] is OpenEngagement.EVENT
    assert recorded[1:] == [type(command).EVENT for command in driver.commands]


def test_the_blank_test_of_text_is_pythons_strip() -> None:
    """The OpenAPI pattern's whitespace is exactly what ``str.strip()`` removes."""
    blank = re.compile(f"[{WHITESPACE}]")
    assert [c for c in map(chr, range(0x110000)) if blank.fullmatch(c)] == [
        c for c in map(chr, range(0x110000)) if c.isspace()
    ]
    filled, any_text = re.compile(FILLED_TEXT_PATTERN), re.compile(ANY_TEXT_PATTERN)
    for value in ("x", " x ", "\u3000x\n", "\ufeff", "\x1c\x1dx", "a\nb"):
        assert filled.match(value), repr(value)
    for value in ("", " ", "\u3000\n\x1c\x85", "x\x00", "\x00"):
        assert not filled.match(value), repr(value)
    assert any_text.match("")
    assert any_text.match(" ")
    assert not any_text.match("a\x00")


# -- what follows from it --------------------------------------------------------------


def test_the_store_seals_exactly_the_declared_fields(driven: tuple[Witness, Driver]) -> None:
    app, _ = driven
    sealed_somewhere: set[tuple[str, str]] = set()
    for notification in app.recorder.select_notifications(start=1, limit=10**6):
        if not notification.topic.startswith("coachlog.") or "Snapshot" in notification.topic:
            continue
        event_class = type(app.mapper.to_domain_event(notification))
        _, payload = split_state(notification.state)
        stored = app.mapper.transcoder.decode(payload)
        envelope = stored.pop("_sealed", None)
        listed = set(envelope["f"]) if envelope else set()
        declared = set(sealed_fields(event_class))
        assert listed <= declared, event_class.__name__
        in_clear = {name for name in declared if stored.get(name) not in (None, "", [], {})}
        assert not in_clear, (event_class.__name__, in_clear)
        assert set(payload_fields(event_class)) - declared <= set(stored)
        sealed_somewhere |= {(event_class.__name__, name) for name in listed}
    assert len(sealed_somewhere) >= 30


def test_after_erasure_sealed_fields_read_as_their_blanks(driven: tuple[Witness, Driver]) -> None:
    app, _ = driven
    for event in events_of(app):
        for name, empty in blanks(type(event)).items():
            assert getattr(event, name) == empty, (type(event).__name__, name)


def test_kafka_copies_carry_no_sealed_field(driven: tuple[Witness, Driver]) -> None:
    app, _ = driven
    for position, event in enumerate(app.before_erasure, start=1):
        message = encode(event, position, 0, 4)
        assert SENTENCE.encode() not in message.value
        value = json.loads(message.value)
        assert value["redacted"] == list(sealed_fields(type(event)))
        for name in sealed_fields(type(event)):
            assert value[name] == blanks(type(event))[name]


def test_pseudonymized_exports_follow_the_declaration(driven: tuple[Witness, Driver]) -> None:
    app, _ = driven
    pseudonymizer = Pseudonymizer(b"field-declaration-test-key")
    kept_sensitive = 0
    for position, event in enumerate(app.before_erasure, start=1):
        event_class = type(event)
        exported = row(position, event, pseudonymizer)["payload"]
        payload = event.payload()
        payload.pop("originator_topic", None)
        assert set(exported) == set(payload) - set(personal_fields(event_class))
        for name in person_fields(event_class):
            if name in exported and payload[name] is not None:
                assert exported[name] == pseudonymizer.person(payload[name])
        for name, spec in declaration(event_class).items():
            if spec.has(Sensitive):
                assert exported[name] == payload[name]
                kept_sensitive += 1
    assert kept_sensitive >= 4
    reader = pseudonymized_reader(app.mapper)
    assert reader.open_only == frozenset(  # type: ignore[attr-defined]
        c for c in EVENT_CLASSES if any(s.has(Sensitive) for s in declaration(c).values())
    )


def _document(events: list[EngagementEvent]) -> docseal.Doc:
    doc: docseal.Doc | None = None
    for event in events:
        doc = progress.fold(doc, event)
    assert doc is not None
    return doc


def test_the_read_model_keeps_sealed_values_only_in_its_sealed_parts(
    driven: tuple[Witness, Driver],
) -> None:
    """Blanking one event class's sealed fields changes the document only inside
    docseal.PARTS, and only for the classes it says it copies."""
    app, _ = driven
    log = app.before_erasure
    folded = _document(log)
    stripped = copy.deepcopy(folded)
    docseal.erase(stripped)
    reading: set[type] = set()
    for event_class in {type(e) for e in log if sealed_fields(type(e))}:
        names = sealed_fields(event_class)
        without = _document([with_blanks(e, names) if type(e) is event_class else e for e in log])
        if without != folded:
            reading.add(event_class)
        docseal.erase(without)
        assert without == stripped, f"{event_class.__name__} leaks outside the sealed parts"
    assert reading == set(docseal.COPIED_FROM) == set(progress.SEALED_FIELDS_USED)


def test_a_sealed_document_shows_nothing_personal_and_opens_whole() -> None:
    app = Engagements(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    ctx = CommandContext(actor_id="coach-ada", actor_role="coach", firm_id=FIRM)
    try:
        do = Driver(app, ctx, open_engagement(app, ctx, days=10))
        goal = do(SetGoal, 9, goal=a_goal(in_days(60)))
        do(DefineMilestone, 9, goal_id=goal, title="first informational interview")
        do(MakeCommitment, 9, title="update CV", due_date=in_days(5))
        do(CheckWellbeing, 8, confidence=4, stress=7, motivation=6, imposter_feelings=8)
        log = list(events_of(app))
        folded = _document(log)
        personal = strings_in(
            [getattr(e, n) for e in log for n in personal_fields(type(e))], keys=False
        )
        assert {"update CV", "first informational interview", "Land a product role"} <= personal
        stored = docseal.seal(copy.deepcopy(folded), app.keys)
        assert "_sealed" in stored
        assert not strings_in({k: v for k, v in stored.items() if k != "_sealed"}) & personal
        assert folded["wellbeing"]
        assert stored["wellbeing"] == []
        assert docseal.unseal(copy.deepcopy(stored), app.keys) == folded
    finally:
        app.close()


def test_erasure_blanks_every_personal_value_of_state_and_read_model(
    driven: tuple[Witness, Driver],
) -> None:
    app, driver = driven
    typed = strings_in(
        [getattr(e, n) for e in app.before_erasure for n in sealed_fields(type(e))], keys=False
    ) - {""}
    assert len(typed) >= 25
    state = app.get(FIRM, driver.engagement_id)
    assert not strings_in(state.as_dict()) & typed
    assert state.wellbeing == []
    for name, spec in declaration(EngagementState).items():
        if spec.sealed:
            assert getattr(state, name) == spec.blank(), name
    for record_type in STATE_RECORDS:
        assert all(not s.has(FromState) for s in declaration(record_type).values())
    erased_doc = _document(list(events_of(app)))
    assert erased_doc["erased"] is True
    assert not strings_in(erased_doc) & typed
    assert erased_doc["wellbeing"] == []
