"""Rebuild a read model beside the live one, compare, then switch readers atomically.

1. Pick the next generation (or resume the one an interrupted rebuild left behind; it
   is marked as building only while a rebuild runs).
2. Fold the whole event store into it, batch by batch, with its own tracking.
3. Catch up to the head, let the live generation catch up to the same position, and
   compare the two document by document, reporting every difference.
4. Switch ``rm_generations.live`` in one transaction and drop the old generation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from domain.application import Engagements
from projections.progress import Doc
from projections.runner import ProjectionRunner
from projections.store import ProgressStore, Quarantine


@dataclass
class RebuildReport:
    """What a rebuild did and found."""

    old_generation: int
    new_generation: int
    events_folded: int = 0
    position: int = 0
    resumed: bool = False
    differences: list[str] = field(default_factory=list)
    switched: bool = False
    #: Engagements the new generation could not fold (it holds them in quarantine).
    quarantined: list[Quarantine] = field(default_factory=list)


def compare(live: dict[str, Doc], rebuilt: dict[str, Doc], limit: int = 200) -> list[str]:
    """Describe every engagement whose documents differ (at most ``limit`` lines)."""
    lines: list[str] = []
    for key in sorted(set(live) | set(rebuilt)):
        if key not in rebuilt:
            lines.append(f"{key}: only in the live generation")
        elif key not in live:
            lines.append(f"{key}: only in the rebuilt generation")
        elif live[key] != rebuilt[key]:
            fields = sorted(
                k
                for k in set(live[key]) | set(rebuilt[key])
                if live[key].get(k) != rebuilt[key].get(k)
            )
            lines.append(f"{key}: differs in {', '.join(fields)}")
        if len(lines) >= limit:
            lines.append("... (more differences not listed)")
            break
    return lines


def rebuild(
    engagements: Engagements,
    store: ProgressStore,
    *,
    switch: bool = True,
    progress: Callable[[int], Any] | None = None,
    batch_size: int = 1000,
) -> RebuildReport:
    """Rebuild the progress read model from the event store; see the module docstring."""
    old = store.live_generation()
    new = old + 1
    # A generation beside the live one that has folded something is what an
    # interrupted rebuild left: carry on from its tracked position.
    resumed = store.tracking(new).position > 0
    if not resumed:
        store.drop_generation(new)  # a stale leftover, never live
    store.create_generation(new)
    store.set_building(new)
    report = RebuildReport(old_generation=old, new_generation=new, resumed=resumed)
    try:
        _build(engagements, store, report, switch, progress, batch_size)
    finally:
        # Never leave a half-built generation marked as building, however the build
        # ended; what it folded stays, for the next rebuild to resume from.
        if not report.switched:
            store.set_building(None)
    return report


def _build(
    engagements: Engagements,
    store: ProgressStore,
    report: RebuildReport,
    switch: bool,
    progress: Callable[[int], Any] | None,
    batch_size: int,
) -> None:
    old, new = report.old_generation, report.new_generation
    builder = ProjectionRunner(engagements, store, generation=new, batch_size=batch_size)
    report.events_folded = builder.catch_up(progress=progress)
    head = store.tracking(new).position
    # Bring the live generation to the same position, so the comparison is like for like.
    ProjectionRunner(engagements, store, generation=old, batch_size=batch_size).catch_up(stop=head)
    report.position = head
    live_docs, new_docs = store.all_docs(old), store.all_docs(new)
    live_position = store.tracking(old).position
    if live_position == head:
        report.differences = compare(live_docs, new_docs)
    else:
        report.differences = [f"live generation moved on to {live_position} during the compare"]
    if switch:
        builder.catch_up()
        store.switch_live(new)
        store.drop_generation(old)
        report.switched = True
    report.quarantined = store.quarantined(new)
