"""Staff camera pages: the list with one-click pause, adding and editing cameras (masks),
and the 'on air' page for a screen in the room (which a screen opens with a camera-node
device token kept in a cookie, set once by a pairing form, or sent as a bearer header).

The office and the director manage cameras; a teacher sees, pauses and resumes the
cameras of their own rooms. Nothing here ever renders a camera's address.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import Session, col, select
from starlette.responses import RedirectResponse, Response

from parent_portal.access import StaffViewer, Viewer, staff_school_ids
from parent_portal.anonymous_forms import render_form
from parent_portal.camera_links import CamerasDep, csp_for, stream_url
from parent_portal.deps import ClockDep, OptionalUser, SessionDep, SettingsDep
from parent_portal.errors import Forbidden, LoginRequired
from parent_portal.routes.auth import client_ip, safe_next
from parent_portal.templating import render
from school import audit
from school.devices import device_for_token
from school.errors import NotFound
from school.models import Classroom, DeviceKind, School
from webcam import admin
from webcam.access import rules_for, viewer_for, viewing_state
from webcam.models import Camera
from webcam.policy import decide

logger = logging.getLogger(__name__)
router = APIRouter()
FormText = Annotated[str, Form()]


@dataclass(frozen=True)
class CameraRow:
    camera: Camera
    room: str
    viewers: int | None
    can_pause: bool
    can_manage: bool


def camera_for_staff(request: Request, session: Session, viewer: Viewer, camera_id: int) -> Camera:
    camera = session.get(Camera, camera_id)
    if camera is None or camera.school_id not in staff_school_ids(session, viewer.user_id):
        audit.record(session, action="access.denied", actor_user_id=viewer.user_id,
                     target_type="camera", target_id=camera_id, ip=client_ip(request),
                     page="staff.camera")
        session.commit()
        raise NotFound("no such camera")
    return camera


def viewers_of(cameras: CamerasDep, camera: Camera) -> int:
    assert camera.id is not None
    here = cameras.viewers(camera.id)
    return here if here is not None else camera.live_viewers


def rows_for(
    session: Session, cameras: CamerasDep, viewer: Viewer, school: School
) -> list[CameraRow]:
    manages = admin.can_manage(session, viewer.user_id, school.id or 0)
    rows = []
    for camera, room in session.exec(
        select(Camera, Classroom.name).join(Classroom, col(Classroom.id) == Camera.classroom_id)
        .where(Camera.school_id == school.id).order_by(Classroom.name, Camera.name)
    ).all():
        pausable = manages or admin.can_pause(session, viewer.user_id, camera)
        if pausable:
            rows.append(CameraRow(camera, room, viewers_of(cameras, camera), pausable, manages))
    return rows


@router.get("/staff/cameras")
def staff_cameras(request: Request, viewer: StaffViewer, session: SessionDep,
                  cameras: CamerasDep) -> Response:
    schools = []
    for school in session.exec(select(School).where(
            col(School.id).in_(staff_school_ids(session, viewer.user_id))).order_by(School.name)):
        assert school.id is not None
        schools.append({
            "school": school, "rows": rows_for(session, cameras, viewer, school),
            "manages": admin.can_manage(session, viewer.user_id, school.id),
            "reads_log": admin.can_read_all_views(session, viewer.user_id, school.id),
            "rooms": list(session.exec(select(Classroom).where(
                Classroom.school_id == school.id).order_by(Classroom.name))),
        })
    return render(request, "staff_cameras.html", {"schools": schools})


@router.post("/staff/cameras")
def add_camera(request: Request, viewer: StaffViewer, session: SessionDep, cameras: CamerasDep,
               classroom_id: Annotated[int, Form()], name: FormText = "",
               source: FormText = "") -> Response:
    room = session.get(Classroom, classroom_id)
    if room is None or room.school_id not in staff_school_ids(session, viewer.user_id):
        raise NotFound("no such class")
    if not admin.can_manage(session, viewer.user_id, room.school_id):
        raise Forbidden("managing cameras needs the office or admin role")
    camera = admin.add_camera(session=session, classroom=room, name=name, source=source,
                              secret_key=cameras.secret_key, actor_user_id=viewer.user_id,
                              ip=client_ip(request))
    session.commit()
    cameras.changed(camera.id)
    return RedirectResponse(f"/staff/cameras/{camera.id}", status_code=303)


@router.get("/staff/cameras/{camera_id}")
def staff_camera(request: Request, camera_id: int, viewer: StaffViewer, session: SessionDep,
                 cameras: CamerasDep, clock: ClockDep) -> Response:
    camera = camera_for_staff(request, session, viewer, camera_id)
    manages = admin.can_manage(session, viewer.user_id, camera.school_id)
    if not manages and not admin.can_pause(session, viewer.user_id, camera):
        raise Forbidden("not one of your rooms")
    school = session.get(School, camera.school_id)
    room = session.get(Classroom, camera.classroom_id)
    assert school is not None
    assert room is not None
    now = clock()
    decision = decide(viewer_for(session, viewer.user_id, school_id=camera.school_id),
                      rules_for(session, camera, school, now), now,
                      viewing_state(session, user_id=viewer.user_id, school_id=camera.school_id,
                                    timezone=school.timezone, now=now, started=now))
    return render(request, "staff_camera.html", {
        "camera": camera, "room": room, "manages": manages, "decision": decision,
        "url": stream_url(request, cameras, camera) if decision.allowed else None,
        "masks": admin.format_masks(camera.masks), "viewers": viewers_of(cameras, camera),
    }, headers=csp_for([camera]))


@router.post("/staff/cameras/{camera_id}")
def edit_camera(request: Request, camera_id: int, viewer: StaffViewer, session: SessionDep,
                cameras: CamerasDep, name: FormText = "", masks: FormText = "",
                source: FormText = "", enabled: FormText = "", release_node: FormText = "",
                ) -> Response:
    camera = camera_for_staff(request, session, viewer, camera_id)
    if not admin.can_manage(session, viewer.user_id, camera.school_id):
        raise Forbidden("managing cameras needs the office or admin role")
    admin.update_camera(session=session, camera=camera, name=name, enabled=bool(enabled),
                        masks=admin.parse_masks(masks), source=source,
                        secret_key=cameras.secret_key, release_node=bool(release_node),
                        actor_user_id=viewer.user_id, ip=client_ip(request))
    session.commit()
    cameras.changed(camera_id)
    return RedirectResponse(f"/staff/cameras/{camera_id}", status_code=303)


def _set_paused(request: Request, camera_id: int, viewer: Viewer, session: Session,
                cameras: CamerasDep, clock: ClockDep, paused: bool, next_url: str) -> Response:
    camera = camera_for_staff(request, session, viewer, camera_id)
    if not admin.can_pause(session, viewer.user_id, camera):
        raise Forbidden("not one of your rooms")
    admin.set_paused(session=session, camera=camera, paused=paused,
                     actor_user_id=viewer.user_id, now=clock(), ip=client_ip(request))
    session.commit()
    cameras.pause(camera_id, paused)
    logger.info("camera %s %s by user %s", camera_id, "paused" if paused else "resumed",
                viewer.user_id)
    return RedirectResponse(safe_next(next_url or "/staff/cameras"), status_code=303)


@router.post("/staff/cameras/{camera_id}/pause")
def pause(request: Request, camera_id: int, viewer: StaffViewer, session: SessionDep,
          cameras: CamerasDep, clock: ClockDep, next: FormText = "") -> Response:
    return _set_paused(request, camera_id, viewer, session, cameras, clock, True, next)


@router.post("/staff/cameras/{camera_id}/resume")
def resume(request: Request, camera_id: int, viewer: StaffViewer, session: SessionDep,
           cameras: CamerasDep, clock: ClockDep, next: FormText = "") -> Response:
    return _set_paused(request, camera_id, viewer, session, cameras, clock, False, next)


SCREEN_COOKIE = "moulin_screen"
SCREEN_COOKIE_DAYS = 365


def _screen_device(request: Request, session: Session, camera: Camera) -> bool:
    """Does the request carry a camera-node device token of the camera's school, in the
    screen's cookie (set once by the pairing form) or an `Authorization: Bearer` header?
    Never in the address, where proxies and browser histories would keep it."""
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    token = bearer if scheme.lower() == "bearer" else request.cookies.get(SCREEN_COOKIE, "")
    found = device_for_token(session, token) if token else None
    return (found is not None and found.kind is DeviceKind.CAMERA_NODE
            and found.school_id == camera.school_id)


@router.get("/cameras/{camera_id}/on-air")
def on_air(request: Request, camera_id: int, session: SessionDep, user: OptionalUser,
           cameras: CamerasDep) -> Response:
    """Lit while anyone watches. For the staff who may see how many watch the room
    (`webcam.admin.viewer_counts_seen`), or the room's wall screen holding a camera-node
    device token of the school (`/cameras/{id}/on-air/pair`, or a bearer header)."""
    camera = session.get(Camera, camera_id)
    allowed = camera is not None and _screen_device(request, session, camera)
    if camera is not None and not allowed and user is not None and user.id is not None:
        allowed = camera_id in admin.viewer_counts_seen(session, user.id, camera.school_id)
    if not allowed and user is None:
        raise LoginRequired(request.url.path)
    if camera is None or not allowed:
        raise NotFound("no such camera")
    room = session.get(Classroom, camera.classroom_id)
    count = viewers_of(cameras, camera)
    return render(request, "on_air.html", {"camera": camera, "room": room, "lit": count > 0,
                                           "count": count})


@router.get("/cameras/{camera_id}/on-air/pair")
def on_air_pair_form(request: Request, camera_id: int) -> Response:
    return render_form(request, "on_air_pair.html", {"camera_id": camera_id})


@router.post("/cameras/{camera_id}/on-air/pair")
def on_air_pair(request: Request, camera_id: int, session: SessionDep,
                settings: SettingsDep, token: FormText = "") -> Response:
    """Keep the device token in this screen's cookie, and show the sign."""
    camera = session.get(Camera, camera_id)
    found = device_for_token(session, token.strip()) if token.strip() else None
    if (camera is None or found is None or found.kind is not DeviceKind.CAMERA_NODE
            or found.school_id != camera.school_id):
        raise NotFound("no such camera")
    response = RedirectResponse(f"/cameras/{camera_id}/on-air", status_code=303)
    response.set_cookie(SCREEN_COOKIE, token.strip(), httponly=True, samesite="strict",
                        secure=settings.https, path="/cameras/",
                        max_age=SCREEN_COOKIE_DAYS * 24 * 3600)
    return response
