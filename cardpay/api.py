"""The till API for reader daemons, authenticated by each device's own bearer token.

    POST /api/till/taps       a tap → its verdict (idempotent on the tap id)
    GET  /api/till/snapshot   what the till needs to decide alone while offline

A refused tap is a verdict (200, `accepted: false`), not an HTTP error: the till shows it.
"""

from __future__ import annotations

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
from school import device_reports
from school.clock import Clock
from school.db import immediate_session
from school.devices import device_for_token
from school.logs import bind
from school.models import Device, DeviceKind, School

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


def current_till(request: Request, authorization: Annotated[str | None, Header()] = None) -> Device:
    """The till whose token this is; 401 for a missing, unknown or revoked token."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            401, "a device token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    clock = cast(Clock, request.app.state.clock)
    with Session(_engine(request), expire_on_commit=False) as session:
        device = device_for_token(session, token.strip())
    if device is None or device.kind is not DeviceKind.TILL:
        raise HTTPException(
            401, "unknown or revoked device token", headers={"WWW-Authenticate": "Bearer"}
        )
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
