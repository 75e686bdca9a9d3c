"""Throttling of requests that are not failures, such as asking for a password-reset
e-mail: counted per key (an e-mail) and per address in the database, like failed sign-ins
(parent_portal.throttle), so every server process sees the same count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from parent_portal.throttle import throttle_key
from school.auth_models import RateEvent


@dataclass(frozen=True)
class Limit:
    kind: str
    per_key: int
    per_ip: int
    window: timedelta


def _count(session: Session, limit: Limit, since: datetime, *, key: str | None = None,
           ip: str | None = None) -> int:
    query = select(func.count()).select_from(RateEvent).where(
        RateEvent.kind == limit.kind, col(RateEvent.at) > since)
    if key is not None:
        query = query.where(RateEvent.key == key)
    if ip is not None:
        query = query.where(RateEvent.ip == ip)
    return int(session.exec(query).one())


def key_exhausted(session: Session, limit: Limit, *, key: str, now: datetime) -> bool:
    """Whether `key` has had its share of requests in the window."""
    return _count(session, limit, now - limit.window, key=throttle_key(key)) >= limit.per_key


def ip_exhausted(session: Session, limit: Limit, *, ip: str, now: datetime) -> bool:
    """Whether the address has had its share of requests in the window."""
    if not ip:
        return False
    return _count(session, limit, now - limit.window, ip=ip[:64]) >= limit.per_ip


def record(session: Session, limit: Limit, *, key: str, ip: str, now: datetime) -> None:
    session.add(RateEvent(kind=limit.kind, key=throttle_key(key), ip=ip[:64], at=now))
