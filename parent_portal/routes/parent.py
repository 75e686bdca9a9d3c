"""The home redirect and the parents' pages: their own children, and no one else's."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from sqlmodel import Session, col, select
from starlette.responses import RedirectResponse, Response

from parent_portal.access import ViewerDep
from parent_portal.audit_log import record_now
from parent_portal.deps import SessionDep
from parent_portal.routes.auth import client_ip
from parent_portal.templating import render
from school.errors import NotFound
from school.models import Classroom, Pupil
from school.people import children_of, is_guardian_of

logger = logging.getLogger(__name__)
router = APIRouter()


def classroom_names(session: Session, pupils: list[Pupil]) -> dict[int, str]:
    ids = {p.classroom_id for p in pupils if p.classroom_id is not None}
    if not ids:
        return {}
    rooms = session.exec(select(Classroom).where(col(Classroom.id).in_(ids))).all()
    return {room.id: room.name for room in rooms if room.id is not None}


@router.get("/")
def home(viewer: ViewerDep) -> Response:
    # Staff who are also parents land on the staff page, which links to their children.
    return RedirectResponse("/staff" if viewer.is_staff else "/parent", status_code=303)


@router.get("/parent")
def parent_home(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    children = list(children_of(session, viewer.user_id, viewer.today))
    return render(
        request,
        "parent_home.html",
        {
            "children": children,
            "rooms": classroom_names(session, children),
        },
    )


@router.get("/parent/children/{pupil_id}")
def child_page(request: Request, pupil_id: int, viewer: ViewerDep, session: SessionDep) -> Response:
    pupil = session.get(Pupil, pupil_id)
    if pupil is None or not is_guardian_of(session, viewer.user_id, pupil_id, viewer.today):
        # The same answer whether the child exists or not, so ids cannot be probed;
        # the attempt is recorded for the school to review.
        record_now(
            request,
            action="access.denied",
            actor_user_id=viewer.user_id,
            target_type="pupil",
            target_id=pupil_id,
            ip=client_ip(request),
            page="parent.child",
        )
        logger.info("user %s denied pupil %s", viewer.user_id, pupil_id)
        raise NotFound("no such child")
    return render(
        request,
        "child.html",
        {
            "pupil": pupil,
            "rooms": classroom_names(session, [pupil]),
        },
    )
