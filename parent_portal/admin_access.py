"""Who reaches the administration pages: the admins of each school, and nobody else.

Anonymous visitors are sent to sign in; anyone else signed in (parents, teachers,
cashiers, office staff, another school's admin) gets a 403, which is written to the audit
log. School ids are not secret, so a 403 tells nothing a 404 would hide.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session, col, select

from parent_portal.access import Viewer, ViewerDep, school_ids_with
from parent_portal.audit_log import record_now
from parent_portal.deps import UNSAFE_METHODS, SessionDep
from parent_portal.errors import Forbidden
from parent_portal.routes.auth import client_ip
from school import audit
from school.models import Role, School
from school.staff import Actor

logger = logging.getLogger(__name__)
ADMIN_ONLY = frozenset({Role.ADMIN})


@dataclass(frozen=True)
class Admin:
    """An admin at work on one of their schools."""

    viewer: Viewer
    school: School
    ip: str

    @property
    def school_id(self) -> int:
        assert self.school.id is not None
        return self.school.id

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.viewer.user_id, ip=self.ip)


def admin_schools(session: Session, user_id: int) -> list[School]:
    ids = school_ids_with(session, user_id, ADMIN_ONLY)
    return list(session.exec(select(School).where(col(School.id).in_(ids))
                             .order_by(School.name)).all())


def refuse(request: Request, session: Session, viewer: Viewer, school_id: int) -> Forbidden:
    """Audit a refused visit and return the 403 to raise. A form post writes in its own
    transaction, which already holds the write lock; a page view writes in a short one."""
    ip, page = client_ip(request), request.url.path
    if request.method in UNSAFE_METHODS:
        audit.record(session, action="access.denied", actor_user_id=viewer.user_id,
                     target_type="school", target_id=school_id, ip=ip, page=page)
        session.commit()
    else:
        record_now(request, action="access.denied", actor_user_id=viewer.user_id,
                   target_type="school", target_id=school_id, ip=ip, page=page)
    logger.info("user %s refused administration of school %s", viewer.user_id, school_id)
    return Forbidden("administration needs the admin role of this school")


def get_admin(request: Request, school_id: int, viewer: ViewerDep,
              session: SessionDep) -> Admin:
    school = session.get(School, school_id)
    if school is None or school_id not in school_ids_with(session, viewer.user_id, ADMIN_ONLY):
        raise refuse(request, session, viewer, school_id)
    return Admin(viewer=viewer, school=school, ip=client_ip(request))


AdminDep = Annotated[Admin, Depends(get_admin)]
