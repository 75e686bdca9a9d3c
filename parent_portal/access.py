"""Who may see what: the signed-in user's staff schools and children, for pages and menus."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session, col, select

from parent_portal.deps import CurrentUser, SessionDep, TodayDep
from parent_portal.errors import Forbidden
from school.models import STAFF_ROLES, Role, RoleGrant, User
from school.people import roles_of


def staff_school_ids(session: Session, user_id: int) -> set[int]:
    """The schools where the user holds a staff role; a staff page shows only these."""
    rows = session.exec(
        select(RoleGrant.school_id).where(
            RoleGrant.user_id == user_id, col(RoleGrant.role).in_(STAFF_ROLES)
        )
    ).all()
    return set(rows)


@dataclass(frozen=True)
class Viewer:
    """The signed-in user with what the menus and home redirect need to know."""

    user: User
    today: date
    is_staff: bool
    is_parent: bool
    is_admin: bool = False

    @property
    def user_id(self) -> int:
        assert self.user.id is not None
        return self.user.id

    def nav(self) -> dict[str, bool]:
        return {"nav_staff": self.is_staff, "nav_parent": self.is_parent,
                "nav_admin": self.is_admin}


def get_viewer(
    request: Request, user: CurrentUser, session: SessionDep, today: TodayDep
) -> Viewer:
    assert user.id is not None
    roles = roles_of(session, user.id, day=today)
    is_parent = Role.PARENT in roles
    viewer = Viewer(user=user, today=today, is_staff=bool(roles & STAFF_ROLES),
                    is_parent=is_parent, is_admin=Role.ADMIN in roles)
    # Kept for the page menu, including on error pages raised later in the request.
    request.state.nav = viewer.nav()
    return viewer


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


def get_staff_viewer(viewer: ViewerDep) -> Viewer:
    if not viewer.is_staff:
        raise Forbidden("staff pages need a staff role")
    return viewer


StaffViewer = Annotated[Viewer, Depends(get_staff_viewer)]


TILL_ROLES = frozenset({Role.CASHIER, Role.OFFICE, Role.ADMIN})
ENROL_ROLES = frozenset({Role.OFFICE, Role.ADMIN})


def school_ids_with(session: Session, user_id: int, roles: frozenset[Role]) -> set[int]:
    """The schools where the user holds one of `roles`."""
    rows = session.exec(
        select(RoleGrant.school_id).where(
            RoleGrant.user_id == user_id, col(RoleGrant.role).in_(roles)
        )
    ).all()
    return set(rows)
