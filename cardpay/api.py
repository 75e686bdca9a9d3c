"""The till API for reader daemons, authenticated by each device's own bearer token.

    POST /api/till/taps       a tap → its verdict (idempotent on the tap id)
    GET  /api/till/snapshot   what the till needs to decide alone while offline

A refused tap is a verdict (200, `accepted: false`), not an HTTP error: the till shows it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, cast
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from cardpay.snapshot import snapshot
from cardpay.till import TapRequest, Till
from school.clock import Clock
from school.db import immediate_session
from school.devices import device_for_token
from school.models import Device, DeviceKind, School

LAST_SEEN_EVERY = timedelta(minutes=1)

router = APIRouter(prefix="/api/till", tags=["till"])


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
        _seen(_engine(request), device, now)
    return device


def _seen(engine: Engine, device: Device, now: datetime) -> None:
    # A write transaction of its own, begun as a writer (BEGIN IMMEDIATE on SQLite): a
    # read transaction upgraded to a write fails at once with 'database is locked' when
    # another request (the same till's snapshot fetch, say) wrote in between.
    with immediate_session(engine) as session:
        session.exec(update(Device).where(col(Device.id) == device.id).values(last_seen_at=now))
        session.commit()
    device.last_seen_at = now


TillDevice = Annotated[Device, Depends(current_till)]


@router.post("/taps")
def post_tap(tap: TapIn, device: TillDevice, request: Request) -> dict[str, Any]:
    till = cast(Till, request.app.state.till)
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
    return verdict.as_json()


@router.get("/snapshot")
def get_snapshot(device: TillDevice, request: Request) -> dict[str, Any]:
    clock = cast(Clock, request.app.state.clock)
    with Session(_engine(request)) as session:
        school = session.get(School, device.school_id)
        assert school is not None
        return snapshot(session, school, clock())
