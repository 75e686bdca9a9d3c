"""`moulin user reset-totp`: a user who lost their second factor gets back in."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, col, select

from parent_portal.sessions import start_session
from school import totp
from school.auth_models import RecoveryCode
from school.models import AuditEvent, User, WebSession
from school.settings import Settings
from tests.moulin.test_cli import db, run

__all__ = ["db", "run"]

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_reset_totp_turns_it_off_and_ends_the_sessions(run, db: Session) -> None:  # type: ignore[no-untyped-def]
    run("user", "add", "anne@example.org", "--role", "office", "--password-stdin",
        stdin="a fine sentence\n")
    user = db.exec(select(User)).one()
    assert user.id is not None
    user.totp_secret = totp.new_secret()
    totp.enable(user, NOW)
    db.add(user)
    totp.new_recovery_codes(db, user.id, NOW)
    start_session(session=db, user=user, now=NOW, settings=Settings(), ip=None, user_agent="")
    db.commit()

    result = run("user", "reset-totp", "Anne@Example.org")
    assert "turned off for anne@example.org" in result.output
    db.expire_all()
    user = db.exec(select(User)).one()
    assert (user.totp_secret, user.totp_enabled_at) == (None, None)
    assert db.exec(select(RecoveryCode)).all() == []
    assert all(s.revoked_at is not None for s in db.exec(select(WebSession)).all())
    assert db.exec(select(AuditEvent).where(col(AuditEvent.action) == "user.totp_reset")).one()

    again = run("user", "reset-totp", "anne@example.org", ok=False)
    assert again.exit_code == 1
    assert "no two-step verification" in again.output
    unknown = run("user", "reset-totp", "nobody@example.org", ok=False)
    assert unknown.exit_code == 1
    assert "No user nobody@example.org" in unknown.output
