"""Configuration from `MOULIN_*` environment variables, optionally a TOML file.

The TOML file is named by `MOULIN_CONFIG`; environment variables override it.
"""

from __future__ import annotations

import os
import secrets
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
    # Hex, 16 bytes or more: NTAG 424 DNA card keys are derived from it (see cardpay.sun).
    card_master_key: str = Field(default="", repr=False, pattern=r"^([0-9a-fA-F]{32,128})?$")
    # Newer master keys, each with the first card key version it serves ("5:HEX,9:HEX"):
    # cards personalised from then on use it; older cards keep theirs (cardpay.card_keys).
    card_master_keys_later: str = Field(
        default="", repr=False,
        pattern=r"^(\d{1,3}:[0-9a-fA-F]{32,128}(,\d{1,3}:[0-9a-fA-F]{32,128})*)?$",
    )
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
    # Failures for one account from browsers it has never signed in with, from anywhere;
    # a browser with the account's device cookie is not held back by them.
    login_max_failures_per_account: int = 20
    # Office and admin staff must sign in with a second factor (TOTP): one who has not
    # enrolled is sent to enrolment after signing in and can do nothing else until done.
    require_totp_for_staff: bool = False
    # Password-reset links: how long one works, and how many may be asked for per e-mail
    # and per address within the window (more are refused without saying so by e-mail).
    password_reset_minutes: int = 30
    password_reset_max_per_email: int = 3
    password_reset_max_per_ip: int = 20
    password_reset_window_minutes: int = 60
    # Requests to the device API (tills) with a bad token, per address and window,
    # before that address gets 429s; valid tokens are never slowed.
    device_max_failures_per_ip: int = 20
    device_failure_window_minutes: int = 15
    # Online top-ups: 'stripe' (needs both keys), 'none', or 'demo', which credits
    # accounts without any payment and is refused in production. Unset: 'demo' on a
    # development box, 'none' in production.
    payment_provider: Literal["none", "demo", "stripe"] | None = None
    stripe_api_key: str = Field(default="", repr=False)
    stripe_webhook_secret: str = Field(default="", repr=False)
    stripe_api_base: str = ""
    # Outgoing e-mail (low-balance alerts); without a host nothing is sent.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "moulin@localhost"
    smtp_username: str = ""
    smtp_password: str = Field(default="", repr=False)
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    # The address parents use, for links in e-mails (e.g. https://cantine.example.org).
    public_url: str = ""
    # Capture the cameras no camera node owns inside the web server. Only right for a
    # single server process: with several workers each would open every camera and
    # count only its own viewers, so `moulin serve --workers N` turns it off.
    capture_cameras: bool = True
    # Logs: "text" for people, "json" (one object a line) for a log collector.
    log_format: Literal["text", "json"] = "text"
    # uvicorn's line for every request. Off: the reverse proxy in front logs each request
    # already, and at lunch a line for every tap cost the server a tenth of its time.
    access_log: bool = False
    # Bearer token for GET /metrics; unset, only this machine (loopback) may read it.
    metrics_token: str = Field(default="", repr=False)
    # Personal data (GDPR). `moulin people purge` anonymises a pupil this many days after
    # their leaving date, and a former guardian as long after their last child's
    # guardianship ended (staff accounts are never touched). The ledger keeps its amounts.
    personal_data_retention_days: int = Field(default=365, ge=0)
    # The camera viewing log (who watched which room, when, from where). PRIVACY.md names
    # no duration; the CNIL recommends keeping access logs six months to a year, so the
    # shorter end: rows older than this are deleted by `moulin people purge`.
    camera_view_retention_days: int = Field(default=180, ge=1)
    # Who answers for the processing, for the register (`moulin gdpr register`): the
    # school's or town's name and address; empty: the schools' names. And how to reach
    # the data protection officer.
    gdpr_controller: str = ""
    gdpr_dpo_contact: str = ""

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
        if self.environment == "production" and self.payment_provider == "demo":
            raise ValueError("MOULIN_PAYMENT_PROVIDER=demo credits accounts without payment; "
                             "use 'stripe' or 'none' in production")
        if self.payment_provider == "stripe" and not (
            self.stripe_api_key and self.stripe_webhook_secret
        ):
            raise ValueError("MOULIN_PAYMENT_PROVIDER=stripe needs MOULIN_STRIPE_API_KEY and "
                             "MOULIN_STRIPE_WEBHOOK_SECRET")
        return self

    @property
    def effective_payment_provider(self) -> str:
        if self.payment_provider is not None:
            return self.payment_provider
        return "none" if self.environment == "production" else "demo"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'moulin.db').resolve()}"

    def link_base(self) -> str | None:
        """Where links in e-mails point: `public_url`; outside production, without one,
        the address this server listens on. Never the request's Host header: whoever asks
        for a reset of someone else's account chooses it. None in production without
        `public_url`."""
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.environment == "production":
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def effective_secret_key(self) -> str:
        """The configured key, or one kept in the data folder for development boxes."""
        if self.secret_key:
            return self.secret_key
        return self._kept_secret("secret_key", secrets.token_urlsafe(48))

    def effective_card_master_key(self) -> bytes:
        """The key every NTAG 424 DNA card's keys are derived from.

        Cards are provisioned with keys derived from it, so it must never change under
        them: in production it must be configured or already kept in the data folder
        (back it up with the database); only development boxes create one."""
        if self.card_master_key:
            return bytes.fromhex(self.card_master_key)
        path = self.data_dir / "card_master_key"
        if self.environment == "production" and not path.exists():
            raise RuntimeError(
                f"no card master key: set MOULIN_CARD_MASTER_KEY or restore {path}"
            )
        return bytes.fromhex(self._kept_secret("card_master_key", secrets.token_hex(16)))

    def card_master_keys_by_version(self) -> dict[int, bytes]:
        """The newer master keys, by the first card key version each serves."""
        pairs = (item.split(":") for item in self.card_master_keys_later.split(",") if item)
        return {int(version): bytes.fromhex(key) for version, key in pairs}

    def _kept_secret(self, name: str, fresh: str) -> str:
        path = self.data_dir / name
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process won the race: use its value
                return path.read_text().strip()
            with os.fdopen(fd, "w") as fh:
                fh.write(fresh)
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
