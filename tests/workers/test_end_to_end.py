"""A command travels API → event store → relay → Kafka → projector → dashboard, each
a process of its own, and the lag figures reach zero."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.workers.conftest import Stack, Store, opening_body, scrape, serve, wait_until


def test_end_to_end(stack: Stack, store: Store) -> None:
    api = serve(stack)
    stack.relay()
    stack.projector()

    opened = api.request("POST", "/engagements", opening_body())
    assert opened.status == 201, opened.body
    engagement_id = opened.body["engagement_id"]
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    scheduled = api.request(
        "POST",
        f"/engagements/{engagement_id}/schedule-session",
        {"scheduled_for": when, "duration_minutes": 60},
    )
    assert scheduled.status == 200, scheduled.body
    held = api.request(
        "POST",
        f"/engagements/{engagement_id}/hold-session",
        {"session_id": scheduled.body["result"], "duration_minutes": 55, "pillars": ["goals"]},
    )
    assert held.status == 200, held.body
    assert held.body["version"] == 3

    def dashboard() -> dict[str, Any] | None:
        reply = api.request("GET", f"/engagements/{engagement_id}/dashboard", timeout=5)
        if reply.status != 200 or reply.body["data"]["sessions"]["held"] != 1:
            return None
        if reply.body["freshness"]["lag"] != 0:
            return None
        body: dict[str, Any] = reply.body
        return body

    try:
        answer = wait_until(dashboard, 60, "the held session on the dashboard", interval=0.5)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{stack.logs()}") from None

    data, fresh = answer["data"], answer["freshness"]
    assert data["version"] == 3
    assert data["sessions"]["held"] == 1
    assert data["sessions"]["scheduled"] == 0
    assert data["status"] == "active"
    head = store.head()
    assert fresh["head"] == head == 3
    assert fresh["position"] == head
    assert fresh["lag"] == 0
    assert fresh["published"] == head
    assert fresh["relay_lag"] == 0

    def lags_are_zero() -> bool:
        samples = scrape(api)
        relay = samples[("coachlog_relay_lag_events", (("relay", "relay"),))]
        projection = samples[("coachlog_projection_lag_events", (("read_model", "progress"),))]
        partitions = [
            value
            for (name, labels), value in samples.items()
            if name == "coachlog_projector_partition_lag_events"
            and ("topic", stack.topic) in labels
        ]
        return (
            relay == 0
            and projection == 0
            and len(partitions) == stack.partitions
            and (all(v == 0 for v in partitions))
        )

    wait_until(lags_are_zero, 30, "zero lags on /metrics")
    samples = scrape(api)
    assert samples[("coachlog_log_head_position", ())] == head
    assert samples[("coachlog_relay_position", (("relay", "relay"),))] == head
    assert samples[("coachlog_projection_position", (("read_model", "progress"),))] == head
