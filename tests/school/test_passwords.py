"""The password rules: length, the common-password list shipped with the package, and
the e-mail address; applied wherever a user is created with a password."""

from __future__ import annotations

import gzip

import pytest
from sqlmodel import Session

from school.passwords import (
    COMMON_PASSWORDS,
    MIN_PASSWORD_LENGTH,
    WeakPassword,
    check_password,
    common_passwords,
)
from school.people import create_user


def test_the_list_says_where_it_comes_from_and_holds_the_usual_suspects() -> None:
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as fh:
        header = fh.read().split("\n\n", 1)[0]
    assert "Django 5.2.19" in header
    assert "Royce Williams" in header
    words = common_passwords()
    assert len(words) > 19_000
    assert {"123456", "password", "qwertyuiop", "1234567890", "#1bitch"} <= words
    assert not any(line.startswith("# Source") for line in words)


@pytest.mark.parametrize(("password", "reason"), [
    ("", "too_short"),
    ("tk4-vmq9-w"[:MIN_PASSWORD_LENGTH - 1], "too_short"),
    ("x" * MIN_PASSWORD_LENGTH, "common"),
    ("1234567890", "common"),
    ("QwertyUiop", "common"),
    (" password123 ", "common"),
    ("anne.martin rules!", "email"),
    ("I am ANNE.MARTIN here", "email"),
])
def test_refused(password: str, reason: str) -> None:
    with pytest.raises(WeakPassword) as refused:
        check_password(password, email="Anne.Martin@example.org")
    assert refused.value.reason == reason


@pytest.mark.parametrize("password", [
    "tk4-vmq9-w"[:MIN_PASSWORD_LENGTH],
    "correct horse battery",
    "anne loves the canteen",  # 'anne' alone is not the whole local part
])
def test_accepted(password: str) -> None:
    check_password(password, email="anne.martin@example.org")


def test_a_very_short_local_part_is_not_looked_for() -> None:
    check_password("a long enough secret", email="a@example.org")
    with pytest.raises(WeakPassword):
        check_password("my name is bob, ok", email="bob@example.org")


def test_create_user_applies_the_rules(session: Session) -> None:
    with pytest.raises(WeakPassword) as refused:
        create_user(session=session, email="jean@example.org", password="iloveyou12")
    assert refused.value.reason == "common"
    with pytest.raises(WeakPassword):
        create_user(session=session, email="jean.dupont@example.org",
                    password="jean.dupont 2026")
    create_user(session=session, email="jean@example.org", password="a fine sentence")
