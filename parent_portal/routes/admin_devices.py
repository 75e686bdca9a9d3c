"""Administration: the school's tills and camera nodes, adding one and revoking one.

A new device's token is shown once, on the page that answers the form, and never again:
only its SHA-256 is kept (see `school.devices`). A revoked token is refused by the next
request that carries it.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import Session, col, select
from starlette.responses import RedirectResponse, Response

from parent_portal.admin_access import Admin, AdminDep
from parent_portal.deps import ClockDep, SessionDep
from parent_portal.i18n import translator
from parent_portal.money_view import Formats
from parent_portal.templating import language_of, render
from school.devices import add_device, revoke_device
from school.errors import NotFound
from school.models import Device, DeviceKind

logger = logging.getLogger(__name__)
router = APIRouter()

FormText = Annotated[str, Form()]
MAX_NAME = 100


def _devices(session: Session, school_id: int) -> list[Device]:
    return list(session.exec(
        select(Device).where(Device.school_id == school_id)
        .order_by(col(Device.revoked_at).is_not(None), Device.kind, Device.name)
    ).all())


def _page(request: Request, session: Session, admin: Admin, *, error: str = "",
          form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    return render(request, "admin_devices.html", {
        "school": admin.school, "tab": "devices", "devices": _devices(session, admin.school_id),
        "kinds": list(DeviceKind), "fmt": Formats.of(request, admin.school), "error": error,
        "form": form or {"name": "", "kind": DeviceKind.TILL.value},
        "done": request.query_params.get("done", ""),
    }, status_code=status_code)


@router.get("/admin/schools/{school_id}/devices")
def devices_page(request: Request, admin: AdminDep, session: SessionDep) -> Response:
    return _page(request, session, admin)


def _problem(session: Session, admin: Admin, name: str, kind: str) -> str:
    """The message key for a bad form, or ''."""
    if kind not in {k.value for k in DeviceKind}:
        return "admin.device.error.kind"
    if not name or len(name) > MAX_NAME:
        return "admin.device.error.name"
    taken = session.exec(select(Device.id).where(
        Device.school_id == admin.school_id, Device.name == name,
        col(Device.revoked_at).is_(None))).first()
    return "admin.device.error.taken" if taken is not None else ""


@router.post("/admin/schools/{school_id}/devices")
def add(request: Request, admin: AdminDep, session: SessionDep, name: FormText = "",
        kind: FormText = DeviceKind.TILL.value) -> Response:
    name = " ".join(name.split())
    problem = _problem(session, admin, name, kind)
    if problem:
        session.rollback()
        t = translator(language_of(request))
        return _page(request, session, admin, error=t(problem),
                     form={"name": name, "kind": kind}, status_code=400)
    device, token = add_device(session=session, school=admin.school, kind=DeviceKind(kind),
                               name=name, actor_user_id=admin.viewer.user_id, ip=admin.ip)
    session.commit()
    logger.info("device %s added to school %s", device.id, admin.school_id)
    # Answered here rather than after a redirect: the token exists nowhere else, and
    # must not stay in a cache or in the browser's history.
    return render(request, "admin_device_added.html", {
        "school": admin.school, "tab": "devices", "device": device, "token": token,
    }, headers={"Cache-Control": "no-store"})


@router.post("/admin/schools/{school_id}/devices/{device_id}/revoke")
def revoke(request: Request, device_id: int, admin: AdminDep, session: SessionDep,
           clock: ClockDep) -> Response:
    device = session.get(Device, device_id)
    if device is None or device.school_id != admin.school_id:
        raise NotFound("no such device")
    if device.revoked_at is None:
        revoke_device(session=session, device=device, now=clock(),
                      actor_user_id=admin.viewer.user_id,
                      ip=admin.ip)
        session.commit()
    return RedirectResponse(f"/admin/schools/{admin.school_id}/devices?done=revoked",
                            status_code=303)
