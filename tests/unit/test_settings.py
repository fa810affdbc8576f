"""The database URL picks and configures the event store."""

from __future__ import annotations

from pathlib import Path

import pytest

from coachlog.settings import DEFAULT_DATABASE_URL, Settings, SettingsError, persistence_env


def test_the_default_is_a_sqlite_file_in_the_working_directory() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    env = settings.eventsourcing_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert env["SQLITE_DBNAME"] == str(Path.cwd() / "coachlog.db")
    assert not settings.is_postgres


def test_an_absolute_sqlite_path_is_kept() -> None:
    assert persistence_env("sqlite:////var/lib/coachlog/events.db")["SQLITE_DBNAME"] == (
        "/var/lib/coachlog/events.db"
    )


def test_a_postgres_url_sets_every_connection_setting() -> None:
    settings = Settings.from_env(
        {"COACHLOG_DATABASE_URL": "postgresql://app:s%40cret@db.internal:6543/coaching"}
    )
    env = settings.eventsourcing_env()
    assert settings.is_postgres
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("db.internal", "6543")
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("app", "s@cret")
    assert env["POSTGRES_DBNAME"] == "coaching"


@pytest.mark.parametrize(
    "url", ["mysql://localhost/x", "postgresql://localhost", "sqlite://", "nonsense"]
)
def test_an_unusable_url_is_refused_with_a_clear_error(url: str) -> None:
    with pytest.raises(SettingsError, match="URL"):
        persistence_env(url)
