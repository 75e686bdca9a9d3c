"""Enrolling a new card: pick a pupil, tap the card on the office reader, confirm.

The office reader's daemon posts the tap like any other; an unknown card's tap shows up
on this page through the till's event stream (static/enrol.js), and staff confirm it.
The card is issued as NTAG 424 DNA when its tap carried a valid SUN message, else by UID,
with the warning that such a card can be copied.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import Session, col, select
from starlette.responses import Response

from cardpay import cards
from cardpay.errors import CardPayError
from cardpay.models import CardKind, Tap
from cardpay.rules import Reason
from parent_portal import tillfeed
from parent_portal.access import ENROL_ROLES, StaffViewer, Viewer, school_ids_with
from parent_portal.deps import ClockDep, SessionDep
from parent_portal.errors import Forbidden
from parent_portal.templating import render
from school.errors import NotFound
from school.models import Classroom, Device, DeviceKind, Pupil

logger = logging.getLogger(__name__)
router = APIRouter()

FRESH_TAP = timedelta(minutes=15)


def _schools(session: Session, viewer: Viewer) -> set[int]:
    schools = school_ids_with(session, viewer.user_id, ENROL_ROLES)
    if not schools:
        raise Forbidden("enrolling cards is for the office")
    return schools


def _choices(session: Session, schools: set[int]) -> tuple[list[tuple[Pupil, str]], list[Device]]:
    pupils = session.exec(
        select(Pupil, Classroom.name)
        .join(Classroom, col(Classroom.id) == Pupil.classroom_id, isouter=True)
        .where(col(Pupil.school_id).in_(schools), col(Pupil.left_on).is_(None))
        .order_by(Classroom.name, Pupil.last_name, Pupil.first_name)
    ).all()
    readers = session.exec(
        select(Device)
        .where(
            col(Device.school_id).in_(schools),
            Device.kind == DeviceKind.TILL,
            col(Device.revoked_at).is_(None),
        )
        .order_by(Device.name)
    ).all()
    return [(p, room or "") for p, room in pupils], list(readers)


@router.get("/staff/cards/enrol")
def enrol_page(
    request: Request,
    viewer: StaffViewer,
    session: SessionDep,
    pupil: int | None = None,
    device: int | None = None,
) -> Response:
    schools = _schools(session, viewer)
    pupils, readers = _choices(session, schools)
    chosen = session.get(Pupil, pupil) if pupil else None
    reader = session.get(Device, device) if device else None
    if chosen is not None and chosen.school_id not in schools:
        chosen = None
    if reader is not None and reader.school_id not in schools:
        reader = None
    after = tillfeed.last_tap_id(session, reader.id) if reader and reader.id else 0
    return render(
        request,
        "enrol.html",
        {
            "pupils": pupils,
            "readers": readers,
            "chosen": chosen,
            "reader": reader,
            "after": after,
        },
    )


@router.post("/staff/cards/enrol")
def enrol(
    request: Request,
    viewer: StaffViewer,
    session: SessionDep,
    clock: ClockDep,
    pupil_id: Annotated[int, Form()],
    tap_row: Annotated[int, Form()],
) -> Response:
    schools = _schools(session, viewer)
    pupil = session.get(Pupil, pupil_id)
    tap = session.get(Tap, tap_row)
    if (
        pupil is None
        or pupil.school_id not in schools
        or tap is None
        or tap.school_id != pupil.school_id
    ):
        raise NotFound("no such pupil or tap")
    if (
        tap.reason != Reason.UNKNOWN_CARD.value
        or not tap.card_uid
        or clock() - tap.received_at > FRESH_TAP
    ):
        return _result(request, pupil, None, "enrol.stale")
    kind = CardKind.NTAG424 if tap.sun_verified else CardKind.UID
    try:
        card = cards.issue_card(
            session=session, pupil=pupil, uid=tap.card_uid, kind=kind, actor_user_id=viewer.user_id
        )
    except CardPayError as exc:
        session.rollback()
        logger.info("enrolment refused for pupil %s: %s", pupil.id, exc)
        return _result(request, pupil, None, "enrol.unavailable")
    return _result(request, pupil, card.kind, None)


def _result(request: Request, pupil: Pupil, kind: CardKind | None, error: str | None) -> Response:
    return render(
        request,
        "enrol_done.html",
        {
            "pupil": pupil,
            "kind": kind.value if kind else None,
            "error": error,
        },
        status_code=200 if error is None else 409,
    )
