"""Parents' camera pages and the streaming endpoints behind the portal's session.

`/parent/cameras` lists the rooms of the parent's children that have a camera: the live
image where the policy allows it now, the reason where it does not. `/parent/cameras/log`
is the parent's own viewing log.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from sqlmodel import Session, col, select
from starlette.responses import Response

from parent_portal.access import ViewerDep
from parent_portal.camera_links import CamerasDep, csp_for, portal_grant, stream_url
from parent_portal.deps import ClockDep, SessionDep
from parent_portal.templating import render
from school.models import Classroom, School
from school.people import children_of
from webcam.access import cameras_in, limits_of, rules_for, viewer_for, viewing_state
from webcam.api import stream_router
from webcam.models import Camera, CameraView
from webcam.policy import Decision, decide

router = APIRouter()
router.include_router(stream_router(portal_grant))

LOG_ROWS = 200


@dataclass(frozen=True)
class RoomView:
    camera: Camera
    room: str
    children: list[str]
    decision: Decision
    url: str | None


def local_text(at: datetime | None, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime("%d/%m/%Y %H:%M:%S") if at else ""


def room_views(
    request: Request, session: Session, cameras: CamerasDep, user_id: int, now: datetime,
    children: dict[int, list[str]],
) -> list[RoomView]:
    views = []
    for camera in cameras_in(session, children):
        school = session.get(School, camera.school_id)
        room = session.get(Classroom, camera.classroom_id)
        assert school is not None
        assert school.id is not None
        assert room is not None
        state = viewing_state(session, user_id=user_id, school_id=school.id,
                              timezone=school.timezone, now=now, started=now)
        decision = decide(viewer_for(session, user_id, school_id=school.id),
                          rules_for(session, camera, school, now), now, state)
        url = stream_url(request, cameras, camera) if decision.allowed else None
        views.append(RoomView(camera, room.name, children[camera.classroom_id], decision, url))
    return views


@router.get("/parent/cameras")
def parent_cameras(
    request: Request, viewer: ViewerDep, session: SessionDep, cameras: CamerasDep,
    clock: ClockDep,
) -> Response:
    children: dict[int, list[str]] = defaultdict(list)
    for pupil in children_of(session, viewer.user_id, viewer.today):
        if pupil.classroom_id is not None and (pupil.left_on is None
                                               or viewer.today < pupil.left_on):
            children[pupil.classroom_id].append(pupil.first_name)
    views = room_views(request, session, cameras, viewer.user_id, clock(), children)
    school_ids = {v.camera.school_id for v in views}
    limits = limits_of(session, school_ids.pop()) if len(school_ids) == 1 else None
    return render(request, "parent_cameras.html", {"views": views, "limits": limits},
                  headers=csp_for([v.camera for v in views]))


@router.get("/parent/cameras/log")
def parent_camera_log(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    rows = session.exec(
        select(CameraView, Camera.name, School.timezone)
        .join(Camera, col(Camera.id) == CameraView.camera_id)
        .join(School, col(School.id) == CameraView.school_id)
        .where(CameraView.user_id == viewer.user_id)
        .order_by(col(CameraView.started_at).desc())
        .limit(LOG_ROWS)
    ).all()
    entries = [
        {"camera": name, "start": local_text(view.started_at, zone),
         "end": local_text(view.ended_at, zone), "reason": view.end_reason, "ip": view.ip or "",
         "minutes": _minutes(view)}
        for view, name, zone in rows
    ]
    return render(request, "parent_camera_log.html", {"entries": entries})


def _minutes(view: CameraView) -> str:
    if view.ended_at is None:
        return ""
    seconds = max(0, int((view.ended_at - view.started_at).total_seconds()))
    return f"{seconds // 60}:{seconds % 60:02d}"
