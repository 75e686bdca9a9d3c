"""The till API for reader daemons, authenticated by each device's own bearer token.

    POST /api/till/taps       a tap → its verdict (idempotent on the tap id)
    GET  /api/till/snapshot   what the till needs to decide alone while offline

A refused tap is a verdict (200, `accepted: false`), not an HTTP error: the till shows it.
A missing, unknown or revoked token gets 401; an address that keeps sending them gets 429
for a while (school.device_throttle), without any cost to valid tokens.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Annotated, Any, cast
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from cardpay import metrics
from cardpay.snapshot import snapshot
from cardpay.till import TapRequest, Till
from school import device_reports, device_throttle
from school.clock import Clock
from school.db import immediate_session
from school.devices import device_for_token
from school.logs import bind
from school.models import Device, DeviceKind, School
from school.settings import Settings

logger = logging.getLogger(__name__)

LAST_SEEN_EVERY = timedelta(minutes=1)

router = APIRouter(prefix="/api/till", tags=["till"], route_class=metrics.TimedRoute)


class CardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uid: str = Field(pattern=r"^[0-9A-Fa-f: ]{8,40}$", description="UID as hex")
    sun_url: str | None = Field(
        default=None, max_length=1000, description="the NDEF URL an NTAG 424 DNA card mirrored"
    )


class TapIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tap_id: UUID
    read_at: AwareDatetime
    card: CardIn
    offline_accepted: bool | None = Field(
        default=None, description="the till's own verdict, for a tap it decided offline"
    )


def _engine(request: Request) -> Engine:
    return cast(Engine, request.app.state.engine)


def refuse_token(request: Request, reason: str) -> HTTPException:
    """The 401 for a bad token, counted against the caller's address; a 429 once that
    address has failed too often (school.device_throttle)."""
    settings = cast(Settings, request.app.state.settings)
    now = cast(Clock, request.app.state.clock)()
    ip = request.client.host if request.client else ""
    window = timedelta(minutes=settings.device_failure_window_minutes)
    # A plain read first: once an address is locked out, its requests write nothing, so a
    # flood of them never takes SQLite's write lock away from the tills.
    with Session(_engine(request)) as read:
        retry_at = device_throttle.locked_until(
            session=read, ip=ip, now=now, limit=settings.device_max_failures_per_ip,
            window=window)
    if retry_at is not None:
        seconds = max(1, math.ceil((retry_at - now).total_seconds()))
        return HTTPException(429, "too many requests with a bad device token",
                             headers={"Retry-After": str(seconds)})
    with immediate_session(_engine(request)) as session:
        device_throttle.record_failure(session=session, ip=ip, now=now, window=window)
        session.commit()
    logger.info("device API: %s from %s", reason, ip)
    return HTTPException(401, reason, headers={"WWW-Authenticate": "Bearer"})


def current_till(request: Request, authorization: Annotated[str | None, Header()] = None) -> Device:
    """The till whose token this is; 401 for a missing, unknown or revoked token (429 for
    an address that keeps sending them)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise refuse_token(request, "a device token is required")
    clock = cast(Clock, request.app.state.clock)
    with Session(_engine(request), expire_on_commit=False) as session:
        device = device_for_token(session, token.strip())
    if device is None or device.kind is not DeviceKind.TILL:
        raise refuse_token(request, "unknown or revoked device token")
    now = clock()
    if device.last_seen_at is None or now - device.last_seen_at > LAST_SEEN_EVERY:
        # A write of its own: the read above must not be upgraded under a busy till.
        with immediate_session(_engine(request)) as session:
            session.exec(
                update(Device).where(col(Device.id) == device.id).values(last_seen_at=now)
            )
            session.commit()
    return device


TillDevice = Annotated[Device, Depends(current_till)]


@router.post("/taps")
def post_tap(tap: TapIn, device: TillDevice, request: Request) -> dict[str, Any]:
    till = cast(Till, request.app.state.till)
    bind(device=f"till:{device.id}")  # this call's own context (a copy, in the threadpool)
    verdict = till.tap(
        device,
        TapRequest(
            tap_id=str(tap.tap_id),
            read_at=tap.read_at,
            uid=tap.card.uid,
            sun_url=tap.card.sun_url,
            offline_accepted=tap.offline_accepted,
        ),
    )
    metrics.tap_answered(verdict)
    return verdict.as_json()


@router.get("/snapshot")
def get_snapshot(device: TillDevice, request: Request) -> dict[str, Any]:
    clock = cast(Clock, request.app.state.clock)
    # The daemon reports its journal's queue with each refresh (school.device_reports).
    report = device_reports.parse_report(request.headers.get(device_reports.QUEUE_HEADER),
                                         request.headers.get(device_reports.LAST_SYNC_HEADER))
    device_reports.record_contact(_engine(request), device.id or 0, clock(), report)
    with Session(_engine(request)) as session:
        school = session.get(School, device.school_id)
        assert school is not None
        return snapshot(session, school, clock())
