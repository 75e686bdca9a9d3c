"""Staff pages for the rules around the cameras: each room's weekly broadcast slots and
consents, the school calendar's closed days, the viewing limits, and the viewing log.

The office and the director change these; the director reads everyone's viewing log.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import Session, col, select
from starlette.responses import RedirectResponse, Response

from parent_portal.access import StaffViewer, Viewer, staff_school_ids
from parent_portal.camera_links import CamerasDep
from parent_portal.deps import ClockDep, SessionDep
from parent_portal.errors import Forbidden
from parent_portal.routes.auth import client_ip
from parent_portal.routes.cameras import local_text
from parent_portal.templating import render
from school.errors import InvalidInput, NotFound
from school.models import Classroom, ClosedDay, School, User
from webcam import admin, consents, schedule
from webcam.access import limits_of, required_consents, slots_of
from webcam.models import BroadcastSlot, Camera, CameraConsent, CameraView

router = APIRouter()
FormText = Annotated[str, Form()]
FormInt = Annotated[int, Form()]
LOG_ROWS = 500


def managed_school(session: Session, viewer: Viewer, school_id: int) -> School:
    school = session.get(School, school_id)
    if school is None or school_id not in staff_school_ids(session, viewer.user_id):
        raise NotFound("no such school")
    if not admin.can_manage(session, viewer.user_id, school_id):
        raise Forbidden("this needs the office or admin role")
    return school


def managed_room(session: Session, viewer: Viewer, classroom_id: int) -> Classroom:
    room = session.get(Classroom, classroom_id)
    if room is None:
        raise NotFound("no such class")
    managed_school(session, viewer, room.school_id)
    return room


def back(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


@router.get("/staff/classes/{classroom_id}/schedule")
def schedule_page(request: Request, classroom_id: int, viewer: StaffViewer,
                  session: SessionDep) -> Response:
    room = managed_room(session, viewer, classroom_id)
    return render(request, "staff_schedule.html", {
        "room": room, "slots": list(slots_of(session, classroom_id)), "weekdays": range(7),
    })


@router.post("/staff/classes/{classroom_id}/schedule")
def add_slot(request: Request, classroom_id: int, viewer: StaffViewer, session: SessionDep,
             cameras: CamerasDep, weekday: FormInt, starts: FormText, ends: FormText) -> Response:
    room = managed_room(session, viewer, classroom_id)
    schedule.add_slot(session=session, classroom=room, weekday=weekday,
                      starts=schedule.parse_time(starts), ends=schedule.parse_time(ends),
                      actor_user_id=viewer.user_id, ip=client_ip(request))
    session.commit()
    cameras.changed()
    return back(f"/staff/classes/{classroom_id}/schedule")


@router.post("/staff/classes/{classroom_id}/schedule/{slot_id}/delete")
def delete_slot(request: Request, classroom_id: int, slot_id: int, viewer: StaffViewer,
                session: SessionDep, cameras: CamerasDep) -> Response:
    room = managed_room(session, viewer, classroom_id)
    slot = session.get(BroadcastSlot, slot_id)
    if slot is None or slot.classroom_id != classroom_id:
        raise NotFound("no such slot")
    schedule.delete_slot(session=session, slot=slot, school_id=room.school_id,
                         actor_user_id=viewer.user_id, ip=client_ip(request))
    session.commit()
    cameras.changed()
    return back(f"/staff/classes/{classroom_id}/schedule")


@router.get("/staff/classes/{classroom_id}/consents")
def consents_page(request: Request, classroom_id: int, viewer: StaffViewer,
                  session: SessionDep, clock: ClockDep) -> Response:
    room = managed_room(session, viewer, classroom_id)
    today = viewer.today
    required = required_consents(session, classroom_id, day=today, now=clock())
    return render(request, "staff_consents.html", {
        "room": room, "required": required,
        "complete": all(r.consent is not None for r in required),
    })


@router.post("/staff/classes/{classroom_id}/consents")
def record_consent(request: Request, classroom_id: int, viewer: StaffViewer,
                   session: SessionDep, cameras: CamerasDep, clock: ClockDep,
                   user_id: FormInt, document_ref: FormText = "") -> Response:
    room = managed_room(session, viewer, classroom_id)
    consents.record_consent(session=session, classroom=room, user_id=user_id,
                            document_ref=document_ref, actor_user_id=viewer.user_id,
                            now=clock(), today=viewer.today, ip=client_ip(request))
    session.commit()
    cameras.changed()
    return back(f"/staff/classes/{classroom_id}/consents")


@router.post("/staff/classes/{classroom_id}/consents/{consent_id}/withdraw")
def withdraw_consent(request: Request, classroom_id: int, consent_id: int, viewer: StaffViewer,
                     session: SessionDep, cameras: CamerasDep, clock: ClockDep) -> Response:
    room = managed_room(session, viewer, classroom_id)
    consent = session.get(CameraConsent, consent_id)
    if consent is None or consent.classroom_id != classroom_id:
        raise NotFound("no such consent")
    consents.withdraw_consent(session=session, consent=consent, school_id=room.school_id,
                              actor_user_id=viewer.user_id, now=clock(), ip=client_ip(request))
    session.commit()
    cameras.changed()
    return back(f"/staff/classes/{classroom_id}/consents")


@router.get("/staff/schools/{school_id}/calendar")
def calendar_page(request: Request, school_id: int, viewer: StaffViewer,
                  session: SessionDep) -> Response:
    school = managed_school(session, viewer, school_id)
    days = session.exec(select(ClosedDay).where(ClosedDay.school_id == school_id)
                        .where(col(ClosedDay.day) >= viewer.today).order_by(col(ClosedDay.day)))
    return render(request, "staff_calendar.html", {
        "school": school, "days": list(days), "limits": limits_of(session, school_id),
    })


@router.post("/staff/schools/{school_id}/calendar")
def close_day(request: Request, school_id: int, viewer: StaffViewer, session: SessionDep,
              cameras: CamerasDep, day: FormText, label: FormText = "") -> Response:
    managed_school(session, viewer, school_id)
    try:
        closed_on = date.fromisoformat(day.strip())
    except ValueError as exc:
        raise InvalidInput("not a date (use 2026-12-24)") from exc
    schedule.add_closed_day(session=session, school_id=school_id, day=closed_on, label=label,
                            actor_user_id=viewer.user_id, ip=client_ip(request))
    session.commit()
    cameras.changed()
    return back(f"/staff/schools/{school_id}/calendar")


@router.post("/staff/schools/{school_id}/calendar/{day_id}/delete")
def reopen_day(request: Request, school_id: int, day_id: int, viewer: StaffViewer,
               session: SessionDep, cameras: CamerasDep) -> Response:
    managed_school(session, viewer, school_id)
    closed = session.get(ClosedDay, day_id)
    if closed is None or closed.school_id != school_id:
        raise NotFound("no such day")
    schedule.delete_closed_day(session=session, closed=closed, actor_user_id=viewer.user_id,
                               ip=client_ip(request))
    session.commit()
    cameras.changed()
    return back(f"/staff/schools/{school_id}/calendar")


@router.post("/staff/schools/{school_id}/camera-limits")
def save_limits(request: Request, school_id: int, viewer: StaffViewer, session: SessionDep,
                session_minutes: FormInt, daily_quota_minutes: FormInt) -> Response:
    managed_school(session, viewer, school_id)
    admin.save_limits(session=session, school_id=school_id, session_minutes=session_minutes,
                      daily_quota_minutes=daily_quota_minutes, actor_user_id=viewer.user_id,
                      ip=client_ip(request))
    session.commit()
    return back(f"/staff/schools/{school_id}/calendar")


@router.get("/staff/schools/{school_id}/camera-log")
def camera_log(request: Request, school_id: int, viewer: StaffViewer,
               session: SessionDep) -> Response:
    school = session.get(School, school_id)
    if school is None or school_id not in staff_school_ids(session, viewer.user_id):
        raise NotFound("no such school")
    if not admin.can_read_all_views(session, viewer.user_id, school_id):
        raise Forbidden("the director reads the viewing log")
    rows = session.exec(
        select(CameraView, Camera.name, User.full_name, User.email)
        .join(Camera, col(Camera.id) == CameraView.camera_id)
        .join(User, col(User.id) == CameraView.user_id)
        .where(CameraView.school_id == school_id)
        .order_by(col(CameraView.started_at).desc()).limit(LOG_ROWS)
    ).all()
    entries = [{"who": name or email, "camera": camera, "ip": view.ip or "",
                "start": local_text(view.started_at, school.timezone),
                "end": local_text(view.ended_at, school.timezone), "reason": view.end_reason}
               for view, camera, name, email in rows]
    return render(request, "staff_camera_log.html", {"school": school, "entries": entries})
