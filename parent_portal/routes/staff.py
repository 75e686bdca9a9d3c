"""Staff pages: their school's classes and the pupils in each, as far as their role sees
them (parent_portal.pupil_fields): office and admins every class, teachers their own."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.responses import Response

from parent_portal.access import ENROL_ROLES, StaffViewer, school_ids_with
from parent_portal.audit_log import record_now
from parent_portal.deps import SessionDep
from parent_portal.money_access import money_schools
from parent_portal.pupil_fields import PupilField, room_fields, visible_rooms
from parent_portal.routes.auth import client_ip
from parent_portal.templating import render
from school.errors import NotFound
from school.models import Classroom, Pupil
from school.people import classrooms_of, pupils_in, staff_schools

logger = logging.getLogger(__name__)
router = APIRouter()


def pupil_counts(session: Session, classroom_ids: list[int]) -> dict[int, int]:
    """Pupils still enrolled in each classroom, in one query."""
    rows = session.exec(
        select(Pupil.classroom_id, func.count())
        .where(col(Pupil.classroom_id).in_(classroom_ids), col(Pupil.left_on).is_(None))
        .group_by(col(Pupil.classroom_id))
    ).all()
    return {room_id: count for room_id, count in rows if room_id is not None}


@router.get("/staff")
def staff_home(request: Request, viewer: StaffViewer, session: SessionDep) -> Response:
    schools = [
        (school, visible_rooms(session, viewer.user_id, school,
                               classrooms_of(session, school.id)))
        for school in staff_schools(session, viewer.user_id)
        if school.id is not None
    ]
    room_ids = [room.id for _, rooms in schools for room in rooms if room.id is not None]
    return render(request, "staff_home.html", {
        "schools": schools, "counts": pupil_counts(session, room_ids),
        "money": bool(money_schools(session, viewer.user_id)),
        "gdpr": bool(school_ids_with(session, viewer.user_id, ENROL_ROLES)),
        "imports": school_ids_with(session, viewer.user_id, ENROL_ROLES),
    })


@router.get("/staff/classes/{classroom_id}")
def staff_class(
    request: Request, classroom_id: int, viewer: StaffViewer, session: SessionDep
) -> Response:
    room = session.get(Classroom, classroom_id)
    fields = room_fields(session, viewer.user_id, room) if room else frozenset()
    if room is None or not fields:
        # Another school's class, or one the viewer does not teach, answers like a
        # missing one.
        record_now(
            request,
            action="access.denied",
            actor_user_id=viewer.user_id,
            target_type="classroom",
            target_id=classroom_id,
            ip=client_ip(request),
            page="staff.class",
        )
        logger.info("user %s denied classroom %s", viewer.user_id, classroom_id)
        raise NotFound("no such class")
    return render(request, "staff_class.html", {
        "room": room, "pupils": list(pupils_in(session, classroom_id)),
        "money": PupilField.MONEY in fields, "tariff": PupilField.TARIFF in fields,
    })
