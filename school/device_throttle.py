"""Throttling of device-API requests with a bad token, counted per address in the
database so that every server process sees the same count.

A 256-bit token cannot be guessed; what this stops is a scanner or a misconfigured box
hammering the till API and filling the logs. Only failures are looked at: a request with
a valid token never reads or writes anything here, so a till behind the same address as
a misbehaving one keeps working at full speed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from school.models import DeviceAuthFailure


def locked_until(
    *, session: Session, ip: str, now: datetime, limit: int, window: timedelta
) -> datetime | None:
    """When this address may try again, or None if it may try now."""
    recent = session.exec(
        select(DeviceAuthFailure.at)
        .where(DeviceAuthFailure.ip == ip[:64], col(DeviceAuthFailure.at) > now - window)
        .order_by(col(DeviceAuthFailure.at).desc())
        .limit(limit)
    ).all()
    if len(recent) < limit:
        return None
    # The oldest of the last `limit` failures leaves the window first.
    return recent[-1] + window


def record_failure(*, session: Session, ip: str, now: datetime, window: timedelta) -> None:
    """Count one failure, and forget those that no longer count, so the table holds at
    most a window's worth of failures per address."""
    session.exec(delete(DeviceAuthFailure).where(col(DeviceAuthFailure.at) <= now - window))
    session.add(DeviceAuthFailure(ip=ip[:64], at=now))
