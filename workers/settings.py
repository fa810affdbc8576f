"""Kafka settings from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class KafkaSettings:
    """Where the broker is, which topic carries engagement events, and how it is split."""

    bootstrap: str = "127.0.0.1:9092"
    topic: str = "coachlog.engagement-events"
    partitions: int = 6
    replication: int = 1
    group: str = "coachlog-projector"
    session_timeout_ms: int = 10_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSettings:
        """Read ``COACHLOG_KAFKA_*`` variables (defaults above)."""
        env = os.environ if environ is None else environ
        return cls(
            bootstrap=env.get("COACHLOG_KAFKA_BOOTSTRAP", cls.bootstrap),
            topic=env.get("COACHLOG_KAFKA_TOPIC", cls.topic),
            partitions=int(env.get("COACHLOG_KAFKA_PARTITIONS", cls.partitions)),
            replication=int(env.get("COACHLOG_KAFKA_REPLICATION", cls.replication)),
            group=env.get("COACHLOG_KAFKA_GROUP", cls.group),
            session_timeout_ms=int(
                env.get("COACHLOG_KAFKA_SESSION_TIMEOUT_MS", cls.session_timeout_ms)
            ),
        )
