"""Replay properties: whatever valid history an engagement has, the store gives it back.

(a) An engagement built in memory and saved (in chunks, so snapshots are taken at
    version 50, 100, ...) reloads through a second application instance equal to the
    in-memory aggregate.
(b) Every past version read from the store equals the fold of that many events, and
    carries that version.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.application import Engagements, fold_subset
from domain.context import CommandContext, acting
from domain.engagement import Engagement
from domain.errors import EngagementNotFound
from tests.conftest import FIRM
from tests.integration.helpers import Scenario, scenarios, snapshot_versions, stored_events

PROPERTY_SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

#: Short histories, and long ones that cross one or two snapshot intervals (50 events).
LENGTHS = st.one_of(st.integers(0, 30), st.integers(55, 130))


@pytest.fixture
def second_app(store_env: dict[str, str]) -> Iterator[Engagements]:
    """Another application instance on the same store (as a second process would be)."""
    application = Engagements(env=store_env)
    try:
        yield application
    finally:
        application.close()


def build_in_memory(app: Engagements, ctx: CommandContext, scenario: Scenario) -> Engagement:
    """Run the scenario on an in-memory engagement, saving every ``save_every`` commands."""
    engagement_id = uuid4()
    with acting(ctx.at(scenario.opened_at)):
        engagement = Engagement.open(**scenario.opening_for(engagement_id).arguments())
    for number, step in enumerate(scenario.steps, start=1):
        with acting(ctx.at(step.occurred_at)):
            step.bound(engagement_id).run(engagement)
        if number % scenario.save_every == 0:
            app.save(engagement)
    app.save(engagement)
    return engagement


@PROPERTY_SETTINGS
@given(scenario=scenarios(LENGTHS))
def test_reload_through_second_instance_equals_the_in_memory_aggregate(
    app: Engagements, second_app: Engagements, ctx: CommandContext, scenario: Scenario
) -> None:
    engagement = build_in_memory(app, ctx, scenario)
    assert engagement.version == scenario.event_count

    reloaded = second_app.get(FIRM, engagement.id)

    assert reloaded == engagement
    assert reloaded.version == scenario.event_count
    expected_snapshots = list(range(50, scenario.event_count + 1, 50))
    assert snapshot_versions(second_app, engagement.id) == expected_snapshots


@PROPERTY_SETTINGS
@given(scenario=scenarios(LENGTHS))
def test_each_past_version_equals_the_fold_of_its_first_events(
    app: Engagements, ctx: CommandContext, scenario: Scenario
) -> None:
    engagement_id = uuid4()
    app.open_engagement(ctx.at(scenario.opened_at), scenario.opening_for(engagement_id))
    for step in scenario.steps:
        app.execute(ctx.at(step.occurred_at), step.bound(engagement_id))
    events = stored_events(app, engagement_id)
    assert len(events) == scenario.event_count

    for n in range(1, len(events) + 1):
        past = app.get(FIRM, engagement_id, version=n)
        assert past.version == n
        assert past == fold_subset(events[:n])
    with pytest.raises(EngagementNotFound):
        app.get(FIRM, engagement_id, version=len(events) + 1)
