"""Configuration from `MOULIN_*` environment variables, optionally a TOML file.

The TOML file is named by `MOULIN_CONFIG`; environment variables override it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOULIN_", extra="forbid")

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("var")
    database_url: str = ""
    secret_key: str = Field(default="", repr=False)
    # Served behind an HTTPS reverse proxy: cookies get Secure, HSTS is sent.
    https: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    forwarded_allow_ips: str = "127.0.0.1"
    default_timezone: str = "Europe/Paris"
    default_currency: str = "EUR"
    default_locale: Literal["fr", "en"] = "fr"
    session_idle_minutes: int = 120
    session_max_hours: int = 12
    login_max_failures: int = 5
    login_window_minutes: int = 15
    login_max_failures_per_ip: int = 50
    # Capture the cameras no camera node owns inside the web server. Only right for a
    # single server process: with several workers each would open every camera and
    # count only its own viewers, so `moulin serve --workers N` turns it off.
    capture_cameras: bool = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("MOULIN_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.environment == "production" and (
            self.secret_key.lower() in PLACEHOLDER_SECRETS or len(self.secret_key) < 32
        ):
            raise ValueError(
                "MOULIN_SECRET_KEY must be set to a random value of at least 32 characters "
                "in production (for example: python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'moulin.db').resolve()}"

    def effective_secret_key(self) -> str:
        """The configured key, or one kept in the data folder for development boxes."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            import secrets

            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
