"""Changing a password, and what must follow any change: every session of that user ends
(but the one making the change, which gets a fresh token), half-finished sign-ins and
reset links are void. Nothing here commits; routes commit with their audit row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col

from parent_portal import sessions
from school import password_reset
from school.auth_models import PendingLogin
from school.models import User, WebSession
from school.passwords import check_password
from school.security import hash_password
from school.settings import Settings


def end_sessions(*, session: Session, user_id: int, now: datetime,
                 keep_id: int | None = None) -> None:
    """Revoke every live session of the user, but `keep_id`'s."""
    query = (update(WebSession)
             .where(col(WebSession.user_id) == user_id, col(WebSession.revoked_at).is_(None)))
    if keep_id is not None:
        query = query.where(col(WebSession.id) != keep_id)
    session.exec(query.values(revoked_at=now))


def end_pending_logins(*, session: Session, user_id: int, now: datetime) -> None:
    session.exec(update(PendingLogin)
                 .where(col(PendingLogin.user_id) == user_id,
                        col(PendingLogin.ended_at).is_(None))
                 .values(ended_at=now))


def new_password_hash(password: str, *, email: str) -> str:
    """The hash of `password` once it passes the rules (WeakPassword if it fails them).
    Routes call it before their transaction's first statement: hashing takes tens of
    milliseconds, which SQLite's write lock should not be held for."""
    check_password(password, email=email)
    return hash_password(password)


def set_password_hash(*, session: Session, user: User, password_hash: str,
                      now: datetime) -> None:
    """Make `password_hash` the user's, voiding reset links and half-finished sign-ins.
    Sessions are the caller's: see `end_sessions` and `rotate`."""
    assert user.id is not None
    user.password_hash = password_hash
    session.add(user)
    password_reset.void_all(session, user.id, now)
    end_pending_logins(session=session, user_id=user.id, now=now)


def rotate(*, session: Session, web_session: WebSession, user: User, now: datetime,
           settings: Settings, ip: str | None, user_agent: str) -> tuple[WebSession, str]:
    """End `web_session` and start a fresh one for the same browser: a token that may have
    leaked before a password change is worth nothing after it."""
    sessions.revoke(session=session, web_session=web_session, now=now)
    return sessions.start_session(session=session, user=user, now=now, settings=settings,
                                  ip=ip, user_agent=user_agent)
