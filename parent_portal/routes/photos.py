"""Pupil photos: the office uploads one (checked by content, shrunk and stripped of every
piece of metadata by school.photos); the pupil's guardians and the staff of the pupil's
school see it as parent_portal.pupil_fields says (cashiers: on the till screen), nobody
else, and no browser or proxy keeps a copy.

GET  /photos/pupil/{id}               the photo (JPEG), for guardians and the school's staff
GET  /staff/pupils/{id}/photo         the upload form, for office and admin staff
POST /staff/pupils/{id}/photo         upload (multipart, at most 2 MB)
POST /staff/pupils/{id}/photo/delete  remove the photo
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from parent_portal.access import (
    ENROL_ROLES,
    StaffViewer,
    Viewer,
    ViewerDep,
    school_ids_with,
    staff_school_ids,
)
from parent_portal.audit_log import record_now
from parent_portal.deps import ClockDep, SessionDep, SettingsDep
from parent_portal.errors import Forbidden
from parent_portal.i18n import translator
from parent_portal.money_access import deny
from parent_portal.pupil_fields import sees_photo
from parent_portal.routes.auth import client_ip
from parent_portal.templating import language_of, render
from parent_portal.tillfeed import day_start
from school import audit, photos
from school.errors import NotFound
from school.models import Pupil, School
from school.people import is_guardian_of

logger = logging.getLogger(__name__)
router = APIRouter()

PHOTO_ROLES = ENROL_ROLES
# The photo itself plus room for the multipart framing and the anti-forgery field.
UPLOAD_LIMIT = photos.MAX_UPLOAD_BYTES + 64 * 1024
NO_STORE = {"Cache-Control": "no-store, private"}


def photo_url(pupil_id: int) -> str:
    return f"/photos/pupil/{pupil_id}"


def may_see(session: Session, viewer: Viewer, pupil: Pupil, now: datetime) -> bool:
    """Guardians; staff as parent_portal.pupil_fields says (a cashier: a pupil who tapped
    a till of the school today)."""
    assert pupil.id is not None
    if is_guardian_of(session, viewer.user_id, pupil.id, viewer.today):
        return True
    school = session.get(School, pupil.school_id)
    since = day_start(school.timezone if school else "UTC", now)
    return sees_photo(session, viewer.user_id, pupil, since)


@router.get("/photos/pupil/{pupil_id}")
def pupil_photo(request: Request, pupil_id: int, viewer: ViewerDep, session: SessionDep,
                settings: SettingsDep, clock: ClockDep) -> Response:
    pupil = session.get(Pupil, pupil_id)
    allowed = pupil is not None and may_see(session, viewer, pupil, clock())
    jpeg = photos.read(settings.data_dir, pupil.photo_path) if pupil and allowed else None
    if jpeg is None:
        if not allowed:
            # The same 404 as for a pupil without a photo; the attempt is recorded.
            record_now(request, action="access.denied", actor_user_id=viewer.user_id,
                       target_type="pupil", target_id=pupil_id, ip=client_ip(request),
                       page="photo")
        raise NotFound("no such photo")
    return Response(jpeg, media_type="image/jpeg", headers=NO_STORE)


def _managed_pupil(request: Request, session: Session, viewer: Viewer, pupil_id: int) -> Pupil:
    """A pupil of one of the viewer's schools (else 404), whose photo the viewer may
    change (else 403)."""
    pupil = session.get(Pupil, pupil_id)
    if pupil is None or pupil.school_id not in staff_school_ids(session, viewer.user_id):
        raise deny(request, session, viewer, "pupil", pupil_id, "staff.photo")
    if pupil.school_id not in school_ids_with(session, viewer.user_id, PHOTO_ROLES):
        raise Forbidden("photos are managed by the office")
    return pupil


def _page(request: Request, pupil: Pupil, *, error: str = "", status_code: int = 200,
          done: str = "") -> Response:
    assert pupil.id is not None
    return render(request, "staff_pupil_photo.html", {
        "pupil": pupil, "photo": photo_url(pupil.id) if pupil.photo_path else None,
        "error": error, "done": done if done in ("saved", "deleted") else "",
        "max_mb": photos.MAX_UPLOAD_BYTES // 1024 // 1024,
    }, status_code=status_code)


@router.get("/staff/pupils/{pupil_id}/photo")
def photo_page(request: Request, pupil_id: int, viewer: StaffViewer,
               session: SessionDep, done: str = "") -> Response:
    return _page(request, _managed_pupil(request, session, viewer, pupil_id), done=done)


@router.post("/staff/pupils/{pupil_id}/photo", max_body_size=UPLOAD_LIMIT)
def upload_photo(request: Request, pupil_id: int, viewer: StaffViewer, session: SessionDep,
                 settings: SettingsDep, photo: Annotated[UploadFile, File()]) -> Response:
    pupil = _managed_pupil(request, session, viewer, pupil_id)
    assert pupil.id is not None
    try:
        jpeg = photos.normalise(photo.file.read(photos.MAX_UPLOAD_BYTES + 1))
    except photos.PhotoRejected as exc:
        logger.info("photo for pupil %s refused: %s", pupil.id, exc)
        t = translator(language_of(request))
        return _page(request, pupil, error=t(f"photo.error.{exc.code}"),
                     status_code=413 if exc.code == "size" else 400)
    pupil.photo_path = photos.store(settings.data_dir, pupil.school_id, pupil.id, jpeg)
    session.add(pupil)
    audit.record(session, action="pupil.photo", school_id=pupil.school_id,
                 actor_user_id=viewer.user_id, target_type="pupil", target_id=pupil.id,
                 ip=client_ip(request), bytes=len(jpeg))
    session.commit()
    return RedirectResponse(f"/staff/pupils/{pupil.id}/photo?done=saved", status_code=303)


@router.post("/staff/pupils/{pupil_id}/photo/delete")
def delete_photo(request: Request, pupil_id: int, viewer: StaffViewer, session: SessionDep,
                 settings: SettingsDep) -> Response:
    pupil = _managed_pupil(request, session, viewer, pupil_id)
    if pupil.photo_path:
        photos.remove(settings.data_dir, pupil.photo_path)
        pupil.photo_path = None
        session.add(pupil)
        audit.record(session, action="pupil.photo_delete", school_id=pupil.school_id,
                     actor_user_id=viewer.user_id, target_type="pupil",
                     target_id=pupil.id or "", ip=client_ip(request))
        session.commit()
    return RedirectResponse(f"/staff/pupils/{pupil_id}/photo?done=deleted", status_code=303)
