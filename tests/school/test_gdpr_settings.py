"""The retention settings: documented defaults, refused nonsense, and the example
configuration file that sets them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from school.settings import Settings

EXAMPLE = Path(__file__).parents[2] / "deploy" / "moulin.toml.example"


def test_defaults() -> None:
    settings = Settings()
    assert settings.personal_data_retention_days == 365
    assert settings.camera_view_retention_days == 180


@pytest.mark.parametrize(("name", "value"), [("personal_data_retention_days", -1),
                                             ("camera_view_retention_days", 0)])
def test_a_negative_or_empty_retention_is_refused(name: str, value: int) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings(**{name: value})


def test_the_example_configuration_sets_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOULIN_CONFIG", str(EXAMPLE))
    monkeypatch.setenv("MOULIN_SECRET_KEY", "s" * 48)
    settings = Settings()
    assert settings.personal_data_retention_days == 365
    assert settings.camera_view_retention_days == 180
    assert settings.gdpr_dpo_contact == "dpo@example.org"
