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


def test_online_payments_default_to_the_demo_only_off_production() -> None:
    assert Settings().effective_payment_provider == "demo"
    production = Settings(environment="production", secret_key="s" * 40)
    assert production.effective_payment_provider == "none"


def test_production_refuses_the_demo_payment_provider() -> None:
    with pytest.raises(ValidationError, match="credits accounts without payment"):
        Settings(environment="production", secret_key="s" * 40, payment_provider="demo")


def test_stripe_needs_its_keys_and_hides_them() -> None:
    with pytest.raises(ValidationError, match="MOULIN_STRIPE_API_KEY"):
        Settings(payment_provider="stripe", stripe_api_key="sk_test_x")
    settings = Settings(payment_provider="stripe", stripe_api_key="sk_test_x",
                        stripe_webhook_secret="whsec_y", smtp_password="hunter22")
    assert "sk_test_x" not in repr(settings)
    assert "whsec_y" not in repr(settings)
    assert "hunter22" not in repr(settings)


def test_newer_card_master_keys_are_read_by_first_version() -> None:
    settings = Settings(environment="test", card_master_keys_later=f"5:{'ab' * 16},9:{'cd' * 16}")
    assert settings.card_master_keys_by_version() == {5: b"\xab" * 16, 9: b"\xcd" * 16}
    assert Settings(environment="test").card_master_keys_by_version() == {}
    with pytest.raises(ValidationError):
        Settings(environment="test", card_master_keys_later="5:short")
