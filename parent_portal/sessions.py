"""Server-side browser sessions: the cookie holds a random token, the database its SHA-256."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select
from starlette.responses import Response

from school.models import User, WebSession
from school.security import new_token, token_digest
from school.settings import Settings

logger = logging.getLogger(__name__)
SESSION_COOKIE = "moulin_session"
# Writing last_seen_at on every request would turn each page view into a write;
# once a minute is precise enough for an idle timeout counted in minutes.
TOUCH_INTERVAL = timedelta(minutes=1)


def start_session(
    *, session: Session, user: User, now: datetime, settings: Settings,
    ip: str | None, user_agent: str,
) -> tuple[WebSession, str]:
    """Add a fresh session for `user` and return it with its cookie token, which is
    not stored anywhere else."""
    token = new_token()
    web_session = WebSession(
        token_sha256=token_digest(token),
        user_id=user.id,  # type: ignore[arg-type]
        csrf_token=new_token(),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_max_hours),
        ip=ip,
        user_agent=user_agent[:255],
    )
    session.add(web_session)
    return web_session, token


def find_session(session: Session, token: str) -> WebSession | None:
    """The session row for a cookie token, whatever its state."""
    if not token:
        return None
    return session.exec(
        select(WebSession).where(WebSession.token_sha256 == token_digest(token))
    ).first()


def is_live(web_session: WebSession, *, now: datetime, settings: Settings) -> bool:
    idle_limit = timedelta(minutes=settings.session_idle_minutes)
    return (
        web_session.revoked_at is None
        and now < web_session.expires_at
        and now < web_session.last_seen_at + idle_limit
    )


def live_session(
    *, session: Session, token: str, now: datetime, settings: Settings
) -> tuple[WebSession, User] | None:
    """The live session and its active user for a cookie token, refreshing its idle
    timer at most once a minute; None when signed out, expired or deactivated."""
    web_session = find_session(session, token)
    if web_session is None or not is_live(web_session, now=now, settings=settings):
        return None
    user = session.get(User, web_session.user_id)
    if user is None or not user.is_active:
        return None
    if now - web_session.last_seen_at >= TOUCH_INTERVAL:
        _touch(session, web_session, now)
    return web_session, user


def _touch(session: Session, web_session: WebSession, now: datetime) -> None:
    """Move the idle timer in a transaction that writes first: on SQLite a transaction
    that has read cannot start writing once another one has committed ('database is
    locked' at once), which many parents arriving together would cause. The read
    transaction is ended first (on the same connection: a second one per request could
    empty the pool). Best effort: a missed touch means the next request tries again."""
    session_id = web_session.id
    session.commit()
    try:
        session.exec(update(WebSession).where(col(WebSession.id) == session_id)
                     .values(last_seen_at=now))
        session.commit()
    except OperationalError:
        session.rollback()
        logger.warning("could not record session activity; will try on the next request")
        return
    set_committed_value(web_session, "last_seen_at", now)


def revoke(*, session: Session, web_session: WebSession, now: datetime) -> None:
    if web_session.revoked_at is None:
        web_session.revoked_at = now
        session.add(web_session)


def revoke_by_token(*, session: Session, token: str, now: datetime) -> None:
    """Revoke whatever session a pre-login cookie named, so it can never be reused."""
    web_session = find_session(session, token)
    if web_session is not None:
        revoke(session=session, web_session=web_session, now=now)


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    # No max_age: the server decides expiry; a browser-session cookie also ends when
    # the browser closes, which suits shared family computers.
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="lax", secure=settings.https, path="/"
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=settings.https, path="/"
    )

