"""Password-reset links: a random token in the e-mailed link, its SHA-256 here.

A link works once, for a short while, and only while it is the user's latest: asking
again, or changing the password any way, voids the ones before. Nothing here commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from school.auth_models import PasswordReset
from school.models import User
from school.security import new_token, token_digest


def void_all(session: Session, user_id: int, now: datetime) -> None:
    """Void every link of the user's that could still be used."""
    session.exec(
        update(PasswordReset)
        .where(col(PasswordReset.user_id) == user_id, col(PasswordReset.used_at).is_(None),
               col(PasswordReset.voided_at).is_(None))
        .values(voided_at=now)
    )


def issue(session: Session, user: User, *, now: datetime, lifetime: timedelta,
          ip: str | None) -> tuple[PasswordReset, str]:
    """A new link for `user` (flushed) and its token, which is kept nowhere else; older
    links are void."""
    assert user.id is not None
    void_all(session, user.id, now)
    token = new_token()
    reset = PasswordReset(user_id=user.id, token_sha256=token_digest(token), created_at=now,
                          expires_at=now + lifetime, ip=(ip or "")[:64] or None)
    session.add(reset)
    session.flush()
    return reset, token


def redeemable(session: Session, token: str, now: datetime) -> PasswordReset | None:
    """The link for `token` if it may still be used now."""
    if not token or len(token) > 128:
        return None
    reset = session.exec(
        select(PasswordReset).where(PasswordReset.token_sha256 == token_digest(token))
    ).first()
    if (reset is None or reset.used_at is not None or reset.voided_at is not None
            or now >= reset.expires_at):
        return None
    return reset


def redeem(session: Session, reset: PasswordReset, now: datetime) -> bool:
    """Mark the link used, unless another request used it first; True if this one did."""
    result = session.exec(
        update(PasswordReset)
        .where(col(PasswordReset.id) == reset.id, col(PasswordReset.used_at).is_(None),
               col(PasswordReset.voided_at).is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1
