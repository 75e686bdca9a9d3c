"""Configuration: environment over TOML file over defaults; secrets checked in production."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from school.settings import Settings


def test_defaults_use_sqlite_in_the_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOULIN_DATABASE_URL", raising=False)
    settings = Settings(data_dir=Path("/srv/moulin"))
    assert settings.effective_database_url == "sqlite:////srv/moulin/moulin.db"
    assert settings.default_timezone == "Europe/Paris"


def test_toml_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "moulin.toml"
    config.write_text('port = 9000\ndatabase_url = "postgresql+psycopg://m@db/moulin"\n')
    monkeypatch.setenv("MOULIN_CONFIG", str(config))
    monkeypatch.setenv("MOULIN_PORT", "9100")
    settings = Settings()
    assert settings.port == 9100
    assert settings.effective_database_url == "postgresql+psycopg://m@db/moulin"


def test_unknown_setting_in_the_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "moulin.toml"
    config.write_text("prot = 9000\n")
    monkeypatch.setenv("MOULIN_CONFIG", str(config))
    with pytest.raises(ValidationError, match="prot"):
        Settings()


@pytest.mark.parametrize("secret", ["", "changeme", "short-but-not-placeholder"])
def test_production_needs_a_real_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="MOULIN_SECRET_KEY"):
        Settings(environment="production", secret_key=secret)


def test_development_keeps_a_generated_secret(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = settings.effective_secret_key()
    assert len(first) >= 43
    assert settings.effective_secret_key() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
