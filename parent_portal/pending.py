"""Sign-ins waiting for their second factor: the password was right, the code is still to
come. The browser holds a random token in a cookie sent only to /login pages; it opens no
session and nothing but the code page looks at it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select
from starlette.responses import Response

from school.auth_models import PendingLogin
from school.models import User
from school.security import new_token, token_digest
from school.settings import Settings

PENDING_COOKIE = "moulin_pending"
PENDING_PATH = "/login"
LIFETIME = timedelta(minutes=5)


def start(*, session: Session, user: User, now: datetime, next_url: str) -> str:
    """Add a pending sign-in for `user`; return its cookie token."""
    token = new_token()
    session.add(PendingLogin(token_sha256=token_digest(token), user_id=user.id,  # type: ignore[arg-type]
                             created_at=now, expires_at=now + LIFETIME,
                             next_url=next_url[:500]))
    return token


def find(session: Session, token: str, now: datetime) -> tuple[PendingLogin, User] | None:
    """The pending sign-in for a cookie token and its user, while it may still finish."""
    if not token:
        return None
    pending = session.exec(
        select(PendingLogin).where(PendingLogin.token_sha256 == token_digest(token))
    ).first()
    if pending is None or pending.ended_at is not None or now >= pending.expires_at:
        return None
    user = session.get(User, pending.user_id)
    if user is None or not user.is_active or user.totp_enabled_at is None:
        return None
    return pending, user


def end(session: Session, pending: PendingLogin, now: datetime) -> None:
    pending.ended_at = now
    session.add(pending)


def set_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(PENDING_COOKIE, token, httponly=True, samesite="lax",
                        secure=settings.https, path=PENDING_PATH,
                        max_age=int(LIFETIME.total_seconds()))


def clear_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(PENDING_COOKIE, httponly=True, samesite="lax",
                           secure=settings.https, path=PENDING_PATH)
