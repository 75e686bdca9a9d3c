"""The cashier's till screen: each verdict of one till as it happens (server-sent events).

GET /till                   the tills of the schools where the user may work one
GET /till/{id}              the screen (static/till.js draws the verdicts)
GET /till/{id}/events       text/event-stream of today's verdicts, newest tap sent last
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Header, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from starlette.responses import Response, StreamingResponse

from parent_portal import tillfeed
from parent_portal.access import TILL_ROLES, StaffViewer, Viewer, school_ids_with
from parent_portal.deps import ClockDep, SessionDep
from parent_portal.routes.auth import client_ip
from parent_portal.templating import render
from school import audit
from school.errors import NotFound
from school.models import Device, DeviceKind, School

logger = logging.getLogger(__name__)
router = APIRouter()


def till_for(session: Session, viewer: Viewer, device_id: int, request: Request) -> Device:
    """The till, if the viewer works the tills of its school; else 404 (and audited)."""
    device = session.get(Device, device_id)
    allowed = school_ids_with(session, viewer.user_id, TILL_ROLES)
    if (
        device is None
        or device.kind is not DeviceKind.TILL
        or device.revoked_at is not None
        or device.school_id not in allowed
    ):
        audit.record(
            session,
            action="access.denied",
            actor_user_id=viewer.user_id,
            target_type="device",
            target_id=device_id,
            ip=client_ip(request),
            page="till",
        )
        session.commit()
        logger.info("user %s denied till %s", viewer.user_id, device_id)
        raise NotFound("no such till")
    return device


def get_till(device_id: int, request: Request, viewer: StaffViewer, session: SessionDep) -> Device:
    return till_for(session, viewer, device_id, request)


TillDep = Annotated[Device, Depends(get_till)]


@dataclass(frozen=True)
class StreamedTill:
    device: Device
    since: datetime  # today's midnight where the till's school is


def get_streamed_till(device: TillDep, session: SessionDep, clock: ClockDep) -> StreamedTill:
    school = session.get(School, device.school_id)
    since = tillfeed.day_start(school.timezone if school else "UTC", clock())
    # A stream runs for minutes: hold no database connection (or SQLite read snapshot)
    # meanwhile; the feed opens its own for each poll.
    session.close()
    return StreamedTill(device, since)


StreamedTillDep = Annotated[StreamedTill, Depends(get_streamed_till)]


@router.get("/till")
def till_index(request: Request, viewer: StaffViewer, session: SessionDep) -> Response:
    schools = school_ids_with(session, viewer.user_id, TILL_ROLES)
    tills = session.exec(
        select(Device, School.name)
        .join(School, col(School.id) == Device.school_id)
        .where(
            col(Device.school_id).in_(schools),
            Device.kind == DeviceKind.TILL,
            col(Device.revoked_at).is_(None),
        )
        .order_by(School.name, Device.name)
    ).all()
    return render(request, "till_index.html", {"tills": tills})


@router.get("/till/{device_id}")
def till_screen(request: Request, device: TillDep, session: SessionDep) -> Response:
    assert device.id is not None
    return render(
        request,
        "till.html",
        {
            "device": device,
            "after": tillfeed.last_tap_id(session, device.id),
        },
    )


@router.get("/till/{device_id}/events")
def till_events(
    request: Request,
    till: StreamedTillDep,
    after: int | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Verdicts after tap row `after` (or the browser's Last-Event-ID when it reconnects);
    with neither, from now on. Never earlier than today (`after=0` is today's taps)."""
    device = till.device
    start = tillfeed.FROM_NOW if after is None else after
    if last_event_id and last_event_id.isdigit():
        start = int(last_event_id)
    assert device.id is not None
    engine = cast(Engine, request.app.state.engine)
    return StreamingResponse(
        tillfeed.stream(engine, device.id, start, since=till.since),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
