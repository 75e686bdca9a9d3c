"""`moulin user add` refuses the passwords the portal refuses."""

from __future__ import annotations

from sqlmodel import Session, select

from school.models import User
from tests.moulin.test_cli import db, run

__all__ = ["db", "run"]


def test_user_add_refuses_a_common_password_or_one_built_on_the_email(
    run, db: Session  # type: ignore[no-untyped-def]
) -> None:
    common = run("user", "add", "anne@example.org", "--password-stdin",
                 stdin="password123\n", ok=False)
    assert common.exit_code != 0
    assert "most commonly used" in common.output
    built = run("user", "add", "anne.martin@example.org", "--password-stdin",
                stdin="anne.martin 2026\n", ok=False)
    assert built.exit_code != 0
    assert "must not contain the e-mail" in built.output
    assert db.exec(select(User)).all() == []
    run("user", "add", "anne@example.org", "--password-stdin", stdin="a fine sentence\n")
    db.rollback()  # a new transaction sees the committed user
    assert [u.email for u in db.exec(select(User)).all()] == ["anne@example.org"]
