"""Administration: the school's staff and their roles, invitations, deactivation.

Admins add staff by e-mail without choosing a password for them (the new member gets an
invitation link), grant and revoke roles, and deactivate accounts, which ends their
sessions at once. The guards of `school.staff` keep every school with an admin.

An address that already has an account, not yet on this school's staff, gets an offer
instead (school.staff_offers): nothing changes on the account until its holder accepts,
signed in, and the admin is shown what an unknown address shows (the address and name
as typed, never the account's name).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from parent_portal.access import ViewerDep
from parent_portal.admin_access import Admin, AdminDep, admin_schools, refuse
from parent_portal.deps import ClockDep, SessionDep, get_clock
from parent_portal.i18n import translator
from parent_portal.invites import invite, send_offer
from parent_portal.templating import language_of, render
from school import staff, staff_offers
from school.errors import InvalidInput, NotFound, SchoolError
from school.models import STAFF_ROLES, Role, User
from school.people import get_user_by_email

logger = logging.getLogger(__name__)
router = APIRouter()

FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
ROLE_ORDER = [r for r in Role if r in STAFF_ROLES]


def users_path(admin: Admin, done: str = "") -> str:
    return f"/admin/schools/{admin.school_id}/users" + (f"?done={done}" if done else "")


@router.get("/admin")
def admin_home(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    schools = admin_schools(session, viewer.user_id)
    if not schools:
        raise refuse(request, session, viewer, 0)
    return render(request, "admin_home.html", {"schools": schools})


def _page(request: Request, session: Session, admin: Admin, *, error: str = "",
          form: dict[str, object] | None = None, status_code: int = 200) -> Response:
    return render(request, "admin_users.html", {
        "school": admin.school, "tab": "users", "me": admin.viewer.user_id,
        "members": staff.staff_of(session, admin.school_id), "roles": ROLE_ORDER,
        "error": error, "form": form or {"email": "", "full_name": "", "roles": []},
        "done": request.query_params.get("done", ""),
    }, status_code=status_code)


@router.get("/admin/schools/{school_id}/users")
def users_page(request: Request, admin: AdminDep, session: SessionDep) -> Response:
    return _page(request, session, admin)


def _refused(request: Request, session: Session, admin: Admin, exc: SchoolError,
             code: str, form: dict[str, object] | None = None) -> Response:
    """Nothing written: roll back, and show the page again with the reason."""
    session.rollback()
    # The code, not the message: a message may repeat the e-mail address typed.
    logger.info("admin form refused in school %s: %s", admin.school_id, code)
    t = translator(language_of(request))
    status = 409 if isinstance(exc, staff.StaffRuleBroken) else 400
    return _page(request, session, admin, error=t(f"admin.error.{code}"), form=form,
                 status_code=status)


@router.post("/admin/schools/{school_id}/users")
def add_user(request: Request, admin: AdminDep, session: SessionDep, email: FormText = "",
             full_name: FormText = "", roles: FormList = []) -> Response:  # noqa: B006
    form: dict[str, object] = {"email": email, "full_name": full_name, "roles": roles}
    try:
        chosen = staff.staff_roles(roles)
    except InvalidInput as exc:
        return _refused(request, session, admin, exc, "role", form)
    if not chosen:
        return _refused(request, session, admin, InvalidInput("no role"), "no_role", form)
    existing = get_user_by_email(session, email)
    if existing is not None and existing.id is not None \
            and not staff.roles_in(session, existing.id, admin.school_id):
        return _offer(request, session, admin, existing, full_name, chosen)
    try:
        user, created = staff.add_staff(session=session, school=admin.school, email=email,
                                        full_name=full_name, roles=chosen, actor=admin.actor)
    except InvalidInput as exc:
        return _refused(request, session, admin, exc, "email", form)
    sent = None
    if user.password_hash is None and user.is_active:
        sent = invite(request, session, school=admin.school, user=user, actor=admin.actor)
    session.commit()
    return render(request, "admin_user_added.html", {
        "school": admin.school, "tab": "users", "added": user, "created": created,
        "sent": sent, "roles": chosen,
    }, headers={"Cache-Control": "no-store"})


def _offer(request: Request, session: Session, admin: Admin, user: User, full_name: str,
           roles: list[Role]) -> Response:
    """Offer `roles` to an existing account and answer as for a new address."""
    now = get_clock(request)()
    token = staff_offers.make_offer(session=session, school=admin.school, user=user,
                                    roles=roles, offered_by=admin.viewer.user_id, now=now,
                                    ip=admin.ip)
    sent = send_offer(request, session, school=admin.school, user=user, token=token)
    session.commit()
    shown = User(email=user.email, full_name=full_name.strip()[:200])  # as typed, unsaved
    return render(request, "admin_user_added.html", {
        "school": admin.school, "tab": "users", "added": shown, "created": True,
        "sent": sent, "roles": roles,
    }, headers={"Cache-Control": "no-store"})


def _member(session: Session, admin: Admin, user_id: int) -> User:
    """A user holding a role in the admin's school; a 404 for anyone else."""
    user = session.get(User, user_id)
    if user is None or not staff.roles_in(session, user_id, admin.school_id):
        raise NotFound("no such member of staff")
    return user


def _role(value: str) -> Role:
    chosen = staff.staff_roles([value])
    if not chosen:
        raise InvalidInput("no role")
    return chosen[0]


@router.post("/admin/schools/{school_id}/users/{user_id}/roles/grant")
def grant_role(request: Request, user_id: int, admin: AdminDep, session: SessionDep,
               role: FormText = "") -> Response:
    user = _member(session, admin, user_id)
    staff.grant(session=session, school=admin.school, user=user, role=_role(role),
                actor=admin.actor)
    session.commit()
    return RedirectResponse(users_path(admin, "granted"), status_code=303)


@router.post("/admin/schools/{school_id}/users/{user_id}/roles/revoke")
def revoke_role(request: Request, user_id: int, admin: AdminDep, session: SessionDep,
                role: FormText = "") -> Response:
    user = _member(session, admin, user_id)
    try:
        staff.revoke(session=session, school=admin.school, user=user, role=_role(role),
                     actor=admin.actor)
    except staff.StaffRuleBroken as exc:
        return _refused(request, session, admin, exc, exc.code)
    session.commit()
    return RedirectResponse(users_path(admin, "revoked"), status_code=303)


def _set_active(request: Request, user_id: int, admin: Admin, session: Session,
                now: datetime, active: bool) -> Response:
    user = _member(session, admin, user_id)
    try:
        staff.set_active(session=session, school=admin.school, user=user, active=active,
                         actor=admin.actor, now=now)
    except staff.StaffRuleBroken as exc:
        return _refused(request, session, admin, exc, exc.code)
    session.commit()
    return RedirectResponse(users_path(admin, "activated" if active else "deactivated"),
                            status_code=303)


@router.post("/admin/schools/{school_id}/users/{user_id}/deactivate")
def deactivate(request: Request, user_id: int, admin: AdminDep, session: SessionDep,
               clock: ClockDep) -> Response:
    return _set_active(request, user_id, admin, session, clock(), active=False)


@router.post("/admin/schools/{school_id}/users/{user_id}/activate")
def activate(request: Request, user_id: int, admin: AdminDep, session: SessionDep,
             clock: ClockDep) -> Response:
    return _set_active(request, user_id, admin, session, clock(), active=True)


@router.post("/admin/schools/{school_id}/users/{user_id}/invite")
def invite_again(request: Request, user_id: int, admin: AdminDep,
                 session: SessionDep) -> Response:
    user = _member(session, admin, user_id)
    if user.password_hash is not None or not user.is_active:
        return _refused(request, session, admin, InvalidInput("has a password"), "not_invited")
    sent = invite(request, session, school=admin.school, user=user, actor=admin.actor)
    session.commit()
    return render(request, "admin_user_added.html", {
        "school": admin.school, "tab": "users", "added": user, "created": False,
        "sent": sent, "roles": sorted(staff.roles_in(session, user_id, admin.school_id),
                                      key=ROLE_ORDER.index),
    }, headers={"Cache-Control": "no-store"})
