"""What the account pages show: the user's live sessions, times in the school's zone, and
the page menu for routes that keep the request's own transaction for writing only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import Request
from sqlmodel import Session, col, select

from parent_portal.access import get_viewer
from parent_portal.deps import get_clock, get_engine, get_settings, get_today
from parent_portal.sessions import is_live
from school.models import School, User, WebSession
from school.settings import Settings


def live_sessions_of(session: Session, user_id: int, *, now: datetime,
                     settings: Settings) -> list[WebSession]:
    """The user's sessions that still work, the most recently used first."""
    rows: Sequence[WebSession] = session.exec(
        select(WebSession)
        .where(WebSession.user_id == user_id, col(WebSession.revoked_at).is_(None),
               col(WebSession.expires_at) > now)
        .order_by(col(WebSession.last_seen_at).desc(), col(WebSession.id).desc())
    ).all()
    return [row for row in rows if is_live(row, now=now, settings=settings)]


def school_zone(session: Session, settings: Settings) -> ZoneInfo:
    zone = session.exec(select(School.timezone).order_by(col(School.id))).first()
    return ZoneInfo(zone or settings.default_timezone)


def local_text(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%d/%m/%Y %H:%M")


def set_nav(request: Request, user: User) -> None:
    """Fill in the page menu from a read of its own, for a form route whose request
    transaction must not start before its slow password work (see routes/account.py)."""
    with Session(get_engine(request)) as read:
        today = get_today(read, get_settings(request), get_clock(request))
        get_viewer(request, user, read, today)
