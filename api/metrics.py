"""Prometheus metrics at /metrics: log head, relay and projection positions and lags.

Values are read from the database at scrape time, so any API instance reports the
same figures, whichever process (relay, projectors) moved them.

They describe the whole multi-firm log (how busy it is), so they are no one firm's
business: /metrics answers only ``Authorization: Bearer <COACHLOG_METRICS_TOKEN>``, and
nothing (404) while that variable is unset. Firms' tokens do not open it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.problems import problem

bp = Blueprint("metrics", __name__)


class CoachlogCollector(Collector):
    """Reads positions from the event store and the read-model database on each scrape."""

    def __init__(self, services: Any) -> None:
        self.services = services

    def collect(self) -> Iterator[GaugeMetricFamily]:
        head = self.services.engagements.recorder.max_notification_id() or 0
        yield GaugeMetricFamily(
            "coachlog_log_head_position", "Position of the newest event in the log.", value=head
        )
        relay_position = GaugeMetricFamily(
            "coachlog_relay_position",
            "Last log position the broker acknowledged.",
            labels=["relay"],
        )
        relay_lag = GaugeMetricFamily(
            "coachlog_relay_lag_events", "Events in the log not yet published.", labels=["relay"]
        )
        projection = GaugeMetricFamily(
            "coachlog_projection_position",
            "Every event up to this position is in the live read model.",
            labels=["read_model"],
        )
        projection_lag = GaugeMetricFamily(
            "coachlog_projection_lag_events",
            "Events in the log not yet in the live read model.",
            labels=["read_model"],
        )
        partition_lag = GaugeMetricFamily(
            "coachlog_projector_partition_lag_events",
            "Log head minus the partition's watermark (Kafka path).",
            labels=["topic", "partition"],
        )
        store = self.services.progress
        with self.services.db.read() as cur:
            cur.execute("SELECT name, position FROM relay_tracking")
            for name, position in cur.fetchall():
                relay_position.add_metric([name], int(position))
                relay_lag.add_metric([name], head - int(position))
            generation = store.live_generation(cur)
            tracked = store.tracking(generation, cur).position
            projection.add_metric(["progress"], tracked)
            projection_lag.add_metric(["progress"], head - tracked)
            cur.execute(
                "SELECT topic, partition_no, watermark FROM rm_kafka_partitions"
                " WHERE generation = %s",
                (generation,),
            )
            for topic, partition, watermark in cur.fetchall():
                partition_lag.add_metric([topic, str(partition)], head - int(watermark))
        yield from (relay_position, relay_lag, projection, projection_lag, partition_lag)


def registry_for(services: Any) -> CollectorRegistry:
    """A registry of our own (one per app, so several apps in one process don't clash)."""
    registry = CollectorRegistry()
    registry.register(CoachlogCollector(services))
    return registry


#: The scraper's secret (16+ characters); /metrics is off without it.
TOKEN_ENV = "COACHLOG_METRICS_TOKEN"


def configure(app: Flask) -> None:
    """Read the scraper's token from the environment unless the app was given one."""
    app.config.setdefault(TOKEN_ENV, os.environ.get(TOKEN_ENV) or None)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition, for the holder of the metrics token."""
    expected = current_app.config.get(TOKEN_ENV)
    if not expected:
        return problem(
            404, "Not Found", f"Metrics are off: set {TOKEN_ENV} to scrape them.", code="not_found"
        )
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        sent.strip().encode(), str(expected).encode()
    ):
        return problem(
            401,
            "Unauthorized",
            "Send 'Authorization: Bearer <the metrics token>'.",
            code="invalid_token",
            headers={"WWW-Authenticate": 'Bearer realm="coachlog-metrics"'},
        )
    registry: CollectorRegistry = current_app.extensions["coachlog_metrics"]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
