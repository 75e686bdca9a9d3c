"""Who may see and move which pupil's money.

Office and admin staff see and move a pupil's money (balance, statement, receipts;
top-ups, refunds, corrections, reversals). Cashiers see a pupil's balance only on the till
screen, at a tap, and the school's day report for the cash-up; never a pupil's account
page (see parent_portal.pupil_fields). Parents see
and act on their own children only. Anyone else gets the same 404 as for a pupil that
does not exist, and the attempt goes to the audit log.
"""

from __future__ import annotations

import logging

from fastapi import Request
from sqlmodel import Session, col, select

from parent_portal.access import Viewer
from parent_portal.errors import Forbidden
from school import audit
from school.errors import NotFound
from school.models import Pupil, Role, RoleGrant, School
from school.people import is_guardian_of

logger = logging.getLogger(__name__)

SEE_MONEY = frozenset({Role.CASHIER, Role.OFFICE, Role.ADMIN})
MOVE_MONEY = frozenset({Role.OFFICE, Role.ADMIN})


def money_roles(session: Session, user_id: int, school_id: int) -> set[Role]:
    rows = session.exec(select(RoleGrant.role).where(
        RoleGrant.user_id == user_id, RoleGrant.school_id == school_id)).all()
    return {Role(r) for r in rows} & SEE_MONEY


def money_schools(session: Session, user_id: int) -> list[School]:
    """The schools whose money this user may see, by name."""
    return list(session.exec(
        select(School).join(RoleGrant, col(RoleGrant.school_id) == col(School.id))
        .where(RoleGrant.user_id == user_id, col(RoleGrant.role).in_(SEE_MONEY))
        .distinct().order_by(School.name)
    ).all())


def deny(request: Request, session: Session, viewer: Viewer, target_type: str,
         target_id: int, page: str) -> NotFound:
    """Audit a refused look-up and return the 404 to raise."""
    ip = request.client.host if request.client else ""
    audit.record(session, action="access.denied", actor_user_id=viewer.user_id,
                 target_type=target_type, target_id=target_id, ip=ip, page=page)
    session.commit()
    logger.info("user %s denied %s %s on %s", viewer.user_id, target_type, target_id, page)
    return NotFound(f"no such {target_type}")


def staff_pupil(request: Request, session: Session, viewer: Viewer, pupil_id: int, *,
                move: bool = False) -> tuple[Pupil, set[Role]]:
    """The pupil and the viewer's money roles in its school; 404 outside those schools
    and for a cashier (who sees pupils on the till screen only)."""
    pupil = session.get(Pupil, pupil_id)
    roles = money_roles(session, viewer.user_id, pupil.school_id) if pupil else set()
    if pupil is None or not roles & MOVE_MONEY:
        raise deny(request, session, viewer, "pupil", pupil_id, "staff.money")
    if move and not roles & MOVE_MONEY:
        raise Forbidden("only office staff move money")
    return pupil, roles


def staff_school(request: Request, session: Session, viewer: Viewer,
                 school_id: int | None) -> School:
    """The school whose reports are asked for (the first of the viewer's by default)."""
    schools = money_schools(session, viewer.user_id)
    if school_id is None and schools:
        return schools[0]
    for school in schools:
        if school.id == school_id:
            return school
    if not schools:
        raise Forbidden("money pages need a cashier, office or admin role")
    raise deny(request, session, viewer, "school", school_id or 0, "staff.reports")


def own_child(request: Request, session: Session, viewer: Viewer, pupil_id: int) -> Pupil:
    """One of the viewer's children today, or the same 404 as for a pupil that does not
    exist, so ids cannot be probed."""
    pupil = session.get(Pupil, pupil_id)
    if pupil is None or not is_guardian_of(session, viewer.user_id, pupil_id, viewer.today):
        raise deny(request, session, viewer, "pupil", pupil_id, "parent.account")
    return pupil
