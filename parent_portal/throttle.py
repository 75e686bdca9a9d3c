"""Throttling of failed sign-ins, counted in the database so that every server process
sees the same count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete
from sqlmodel import Session, col, select

from school.models import LoginFailure
from school.security import token_digest
from school.settings import Settings

MAX_EMAIL_LENGTH = 254


def throttle_key(email: str) -> str:
    """The e-mail as counted: trimmed and lower-cased, as stored on users.

    Text that is no e-mail at all is often a password typed into the wrong field, so it
    is counted under its digest rather than stored as typed."""
    key = email.strip().lower()
    if "@" not in key:
        return "sha256:" + token_digest(key)
    return key[:MAX_EMAIL_LENGTH]


def _retry_at(times: Sequence[datetime], limit: int, window: timedelta) -> datetime | None:
    """When the count of failures in the window falls back below `limit`, if it is not
    already below it. `times` are the failures inside the window, oldest first."""
    if len(times) < limit:
        return None
    return times[len(times) - limit] + window


def _recent(session: Session, who: ColumnElement[bool], since: datetime) -> list[datetime]:
    rows = session.exec(
        select(LoginFailure.at)
        .where(who, col(LoginFailure.at) > since)
        .order_by(col(LoginFailure.at))
    ).all()
    return list(rows)


def locked_until(
    *, session: Session, email: str, ip: str, now: datetime, settings: Settings
) -> datetime | None:
    """The time from which this e-mail and address may try again, or None if they may
    try now. Nothing about the password is looked at."""
    window = timedelta(minutes=settings.login_window_minutes)
    since = now - window
    by_email = _retry_at(
        _recent(session, col(LoginFailure.email) == throttle_key(email), since),
        settings.login_max_failures, window,
    )
    by_ip = _retry_at(
        _recent(session, col(LoginFailure.ip) == ip, since) if ip else [],
        settings.login_max_failures_per_ip, window,
    )
    candidates = [at for at in (by_email, by_ip) if at is not None and at > now]
    return max(candidates) if candidates else None


def record_failure(*, session: Session, email: str, ip: str, now: datetime) -> None:
    session.add(LoginFailure(email=throttle_key(email), ip=ip[:64], at=now))


def clear_failures(*, session: Session, email: str) -> None:
    """Forget an e-mail's failures once its owner has proved the password, so a parent
    who mistyped a few times is not locked out later; other e-mails' failures stay."""
    session.exec(delete(LoginFailure).where(col(LoginFailure.email) == throttle_key(email)))
