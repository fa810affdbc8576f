"""Prometheus metrics at /metrics: log head, relay and projection positions and lags.

Values are read from the database at scrape time, so any API instance reports the
same figures, whichever process (relay, projectors) moved them.

They describe the whole multi-firm log (how busy it is), so they are no one firm's
business: /metrics answers only ``Authorization: Bearer <COACHLOG_METRICS_TOKEN>``, and
nothing (404) while that variable is unset. Firms' tokens do not open it.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.problems import problem

bp = Blueprint("metrics", __name__)

#: A projector instance not heard of for this long is not reported (seconds; it
#: records itself every 2 s).
LIVE_SECONDS = 15.0
log = logging.getLogger("coachlog.api")


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
        quarantined = GaugeMetricFamily(
            "coachlog_projection_quarantined_engagements",
            "Engagements whose events the live read model stopped folding (see rm_quarantine).",
            labels=["read_model"],
        )
        instance_partitions = GaugeMetricFamily(
            "coachlog_projector_assigned_partitions",
            "Partitions a live projector instance owns now.",
            labels=["instance", "topic"],
        )
        instance_progress = GaugeMetricFamily(
            "coachlog_projector_last_progress_timestamp_seconds",
            "When a live projector instance last folded records or swept to the head.",
            labels=["instance", "topic"],
        )
        instance_seen = GaugeMetricFamily(
            "coachlog_projector_last_seen_timestamp_seconds",
            "When a live projector instance last recorded itself.",
            labels=["instance", "topic"],
        )
        unowned = GaugeMetricFamily(
            "coachlog_projector_unowned_partitions",
            "Partitions no live projector instance owns (they are swept from the store).",
            labels=["topic"],
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
            quarantined.add_metric(["progress"], store.count_quarantined(generation, cur))
            cur.execute(
                "SELECT instance, topic, assigned, partitions, last_progress_at, last_seen_at"
                " FROM rm_projector_instances WHERE last_seen_at >= %s",
                (time.time() - LIVE_SECONDS,),
            )
            owned: dict[str, set[int]] = {}
            counts: dict[str, int] = {}
            for instance, topic, assigned, partitions, progressed, seen in cur.fetchall():
                held = json.loads(assigned)
                instance_partitions.add_metric([instance, topic], len(held))
                if progressed is not None:
                    instance_progress.add_metric([instance, topic], float(progressed))
                instance_seen.add_metric([instance, topic], float(seen))
                owned.setdefault(topic, set()).update(held)
                if partitions:
                    counts[topic] = int(partitions)
            for topic, count in counts.items():
                unowned.add_metric([topic], len(set(range(count)) - owned.get(topic, set())))
        yield from (
            instance_partitions,
            instance_progress,
            instance_seen,
            unowned,
            relay_position,
            relay_lag,
            projection,
            projection_lag,
            partition_lag,
            quarantined,
        )
        yield GaugeMetricFamily(
            "coachlog_database_up", "1 when the database answered this scrape.", value=1
        )


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


#: The longest a scrape waits for the database before answering without it (seconds).
SCRAPE_BUDGET = 1.5

_DOWN = (
    b"# HELP coachlog_database_up 1 when the database answered this scrape.\n"
    b"# TYPE coachlog_database_up gauge\n"
    b"coachlog_database_up 0.0\n"
)


class Scraper:
    """Collects in a thread of its own, one collection at a time: a scrape answers
    within SCRAPE_BUDGET whatever the database does (``coachlog_database_up 0`` and
    nothing else when it did not answer in time), and a hanging database never piles
    up threads."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics")
        self._pending: Future[bytes] | None = None
        self._lock = threading.Lock()

    def scrape(self, budget: float = SCRAPE_BUDGET) -> bytes:
        with self._lock:
            if self._pending is None or self._pending.done():
                self._pending = self._executor.submit(generate_latest, self.registry)
            pending = self._pending
        try:
            return pending.result(timeout=budget)
        except FutureTimeout:
            return _DOWN
        except Exception as error:  # the database refused: say so, in the format
            log.warning("metrics without the database: %s", error)
            return _DOWN


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
    scraper: Scraper = current_app.extensions["coachlog_metrics"]
    return Response(scraper.scrape(), mimetype=CONTENT_TYPE_LATEST)
