"""Throttling of failed sign-ins, counted in the database so that every server process
sees the same count, so that failed guesses slow the guesser and not the owner.

- A browser with a valid device cookie for the account (parent_portal.device_cookie) is
  counted on its own: only its own failures lock it out.
- Any other browser is refused for an account after `login_max_failures` from its
  address, after `login_max_failures_per_account` for the account from anywhere, and
  after `login_max_failures_per_ip` for all accounts from its address. Failures with a
  device cookie count in none of these.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, or_
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
    *, session: Session, email: str, ip: str, now: datetime, settings: Settings,
    device: str = "",
) -> datetime | None:
    """The time from which this e-mail and address (or this known device) may try again,
    or None if they may try now. Nothing about the password is looked at."""
    window = timedelta(minutes=settings.login_window_minutes)
    since = now - window
    if device:
        by_device = _retry_at(_recent(session, col(LoginFailure.device) == device, since),
                              settings.login_max_failures, window)
        return by_device if by_device is not None and by_device > now else None
    untrusted = col(LoginFailure.device) == ""
    account = col(LoginFailure.email) == throttle_key(email)
    limits = [(and_(untrusted, account), settings.login_max_failures_per_account)]
    if ip:
        address = col(LoginFailure.ip) == ip
        limits += [(and_(untrusted, account, address), settings.login_max_failures),
                   (and_(untrusted, address), settings.login_max_failures_per_ip)]
    found = [_retry_at(_recent(session, who, since), limit, window) for who, limit in limits]
    candidates = [at for at in found if at is not None and at > now]
    return max(candidates) if candidates else None


def record_failure(*, session: Session, email: str, ip: str, now: datetime,
                   device: str = "") -> None:
    session.add(LoginFailure(email=throttle_key(email), ip=ip[:64], at=now, device=device))


def clear_failures(*, session: Session, email: str, device: str = "") -> None:
    """Forget an e-mail's failures (and this browser's) once its owner has proved the
    password, so a parent who mistyped a few times is not locked out later; other
    e-mails' failures stay."""
    who = col(LoginFailure.email) == throttle_key(email)
    if device:
        who = or_(who, col(LoginFailure.device) == device)
    session.exec(delete(LoginFailure).where(who))
