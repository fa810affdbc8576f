"""docker-compose.yml stays valid (checked by docker-compose itself, no engine needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is not installed; the test command installs it")
    return subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


def test_the_compose_file_is_valid() -> None:
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_the_compose_file_runs_postgres_and_kafka_with_health_checks() -> None:
    services = _compose("config", "--services").stdout.split()
    assert {"postgres", "kafka"} <= set(services)
    rendered = _compose("config").stdout
    assert "apache/kafka" in rendered
    assert "KAFKA_PROCESS_ROLES: broker,controller" in rendered
    assert rendered.count("healthcheck:") >= 2


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
