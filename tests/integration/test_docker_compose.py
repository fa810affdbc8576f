"""docker-compose.yml stays valid (checked by docker-compose itself, no engine needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.broker import SHARED_SETTINGS, kafka_version
from tests.conftest import TEST_MASTER_KEY

ROOT = Path(__file__).resolve().parents[2]


def _compose(
    *args: str, master_key: str | None = TEST_MASTER_KEY
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is not installed; the test command installs it")
    env = {k: v for k, v in os.environ.items() if k != "COACHLOG_MASTER_KEY"}
    if master_key is not None:
        env["COACHLOG_MASTER_KEY"] = master_key
    return subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
    )


def test_the_compose_file_is_valid() -> None:
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_the_compose_file_refuses_to_run_without_a_master_key() -> None:
    result = _compose("config", "-q", master_key=None)
    assert result.returncode != 0
    assert "COACHLOG_MASTER_KEY" in result.stderr


def test_every_coachlog_service_gets_the_master_key_and_anchoring_runs() -> None:
    rendered = _compose("config").stdout
    # migrate, api, relay, projector, anchor and the demo seeder: each reads or writes
    # sealed data.
    assert rendered.count(f"COACHLOG_MASTER_KEY: {TEST_MASTER_KEY}") == 6
    assert "- anchor\n" in rendered
    assert "- --every\n" in rendered


def test_the_compose_file_runs_postgres_and_kafka_with_health_checks() -> None:
    services = _compose("config", "--services").stdout.split()
    assert {"postgres", "kafka"} <= set(services)
    rendered = _compose("config").stdout
    assert "apache/kafka" in rendered
    assert "KAFKA_PROCESS_ROLES: broker,controller" in rendered
    assert rendered.count("healthcheck:") >= 2


def test_compose_runs_the_kafka_the_tests_run() -> None:
    """The same Apache Kafka version as the tests' broker, and the same settings: no
    topic is ever created by a subscription (the relay creates it, with the configured
    partitions), single-node replication for the internal topics."""
    rendered = yaml.safe_load(_compose("config").stdout)
    kafka = rendered["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{kafka_version()}"
    environment = kafka["environment"]
    for name, value in SHARED_SETTINGS.items():
        assert environment[f"KAFKA_{name.upper().replace('.', '_')}"] == value, name
    assert environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "KAFKA_NUM_PARTITIONS" not in environment
    # data on the volume, not in the container
    assert environment["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    assert any(":/var/lib/kafka/data" in volume for volume in _volumes(kafka))
    partitions = {
        rendered["services"][name]["environment"]["COACHLOG_KAFKA_PARTITIONS"]
        for name in ("api", "relay", "projector")
    }
    assert partitions == {"6"}


def _volumes(service: dict[str, object]) -> list[str]:
    found = []
    for volume in service.get("volumes") or []:  # type: ignore[attr-defined]
        if isinstance(volume, dict):
            found.append(f"{volume.get('source')}:{volume.get('target')}")
        else:
            found.append(str(volume))
    return found


def test_the_api_relay_and_two_projectors_start_after_the_schema_is_set_up() -> None:
    services = set(_compose("config", "--services").stdout.split())
    assert {"migrate", "api", "relay", "projector"} <= services
    rendered = _compose("config").stdout
    assert "replicas: 2" in rendered
    assert "- project\n" in rendered
    assert "- --source\n" in rendered
    assert "- kafka\n" in rendered
    assert "- relay\n" in rendered
    assert rendered.count("condition: service_completed_successfully") >= 3


def test_the_coachlog_services_point_at_the_compose_postgres() -> None:
    rendered = _compose("config").stdout
    assert (
        "COACHLOG_DATABASE_URL: postgresql://coachlog:coachlog@postgres:5432/coachlog" in rendered
    )
