"""Administering a school's staff: adding them, granting and revoking roles, deactivating.

Every change is written to the audit log in the caller's transaction; the caller commits.
Two guards keep a school administrable: no change may leave a school without an active
admin, and nobody may lock themselves out (deactivate themselves, or give up their own
last admin role). An admin acts on accounts of their own school only: an account with
any tie to a school where they are not admin (a staff role there, or a child there) is
not theirs to switch off.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from school import audit
from school.errors import Conflict, InvalidInput
from school.models import (
    STAFF_ROLES,
    Guardianship,
    Pupil,
    Role,
    RoleGrant,
    School,
    User,
    WebSession,
)
from school.people import create_user, get_user_by_email, grant_role, normalise_email


class StaffRuleBroken(Conflict):
    """A change an administration guard refuses; `code` names the message to show:
    'last_admin', 'own_last_admin', 'self_deactivate', 'other_school'."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class StaffMember:
    user: User
    roles: frozenset[Role]

    @property
    def invited(self) -> bool:
        """Added, but has not chosen a password yet."""
        return self.user.password_hash is None


@dataclass(frozen=True)
class Actor:
    user_id: int
    ip: str | None = None


def staff_of(session: Session, school_id: int) -> list[StaffMember]:
    """Everyone holding a staff role in the school, by name, with their roles there."""
    rows = session.exec(
        select(User, RoleGrant.role)
        .join(RoleGrant, col(RoleGrant.user_id) == col(User.id))
        .where(RoleGrant.school_id == school_id)
        .order_by(User.full_name, User.email)
    ).all()
    members: dict[int, tuple[User, set[Role]]] = {}
    for user, role in rows:
        assert user.id is not None
        members.setdefault(user.id, (user, set()))[1].add(Role(role))
    return [StaffMember(user, frozenset(roles)) for user, roles in members.values()]


def roles_in(session: Session, user_id: int, school_id: int) -> set[Role]:
    rows = session.exec(select(RoleGrant.role).where(
        RoleGrant.user_id == user_id, RoleGrant.school_id == school_id)).all()
    return {Role(r) for r in rows}


def staff_roles(values: Iterable[str]) -> list[Role]:
    """Staff roles from form values, in a stable order; InvalidInput for anything else."""
    roles: set[Role] = set()
    for value in values:
        try:
            role = Role(value)
        except ValueError as exc:
            raise InvalidInput(f"no role {value!r}") from exc
        if role not in STAFF_ROLES:
            raise InvalidInput(f"{role} is not a staff role")
        roles.add(role)
    return sorted(roles, key=list(Role).index)


def add_staff(
    *, session: Session, school: School, email: str, full_name: str, roles: list[Role],
    actor: Actor,
) -> tuple[User, bool]:
    """Give `roles` in `school` to the holder of `email`, creating their account (without a
    password: they choose one through an invitation) when there is none. Returns the user
    and whether the account is new."""
    if not roles:
        raise InvalidInput("choose at least one role")
    email = normalise_email(email)
    user = get_user_by_email(session, email)
    created = user is None
    if user is None:
        user = create_user(session=session, email=email, full_name=full_name.strip()[:200])
    for role in roles:
        grant_role(session=session, user=user, school=school, role=role)
    audit.record(session, action="staff.add", school_id=school.id, actor_user_id=actor.user_id,
                 target_type="user", target_id=user.id or "", ip=actor.ip, email=email,
                 roles=[r.value for r in roles], new_account=created)
    return user, created


def grant(*, session: Session, school: School, user: User, role: Role, actor: Actor) -> None:
    before = roles_in(session, user.id or 0, school.id or 0)
    grant_role(session=session, user=user, school=school, role=role)
    if role not in before:
        audit.record(session, action="role.grant", school_id=school.id,
                     actor_user_id=actor.user_id, target_type="user", target_id=user.id or "",
                     ip=actor.ip, role=role.value, before=_names(before),
                     after=_names(before | {role}))


def revoke(*, session: Session, school: School, user: User, role: Role, actor: Actor) -> None:
    """Take a role away; refused when it would lock the school or the actor out."""
    assert user.id is not None
    assert school.id is not None
    before = roles_in(session, user.id, school.id)
    if role not in before:
        return
    if role is Role.ADMIN:
        if user.id == actor.user_id and _admin_schools(session, user.id) == {school.id}:
            raise StaffRuleBroken("own_last_admin", "you cannot give up your last admin role")
        if _active_admins(session, school.id) - {user.id} == set():
            raise StaffRuleBroken("last_admin", "the school would have no active admin")
    grant_row = session.exec(select(RoleGrant).where(
        RoleGrant.user_id == user.id, RoleGrant.school_id == school.id,
        RoleGrant.role == role)).one()
    session.delete(grant_row)
    audit.record(session, action="role.revoke", school_id=school.id,
                 actor_user_id=actor.user_id, target_type="user", target_id=user.id,
                 ip=actor.ip, role=role.value, before=_names(before),
                 after=_names(before - {role}))


def set_active(
    *, session: Session, school: School, user: User, active: bool, actor: Actor, now: datetime
) -> None:
    """Deactivate (every session of theirs ends at once) or reactivate an account."""
    assert user.id is not None
    assert school.id is not None
    if user.is_active == active:
        return
    if not active:
        if user.id == actor.user_id:
            raise StaffRuleBroken("self_deactivate", "you cannot deactivate yourself")
        if _active_admins(session, school.id) - {user.id} == set():
            raise StaffRuleBroken("last_admin", "the school would have no active admin")
    elsewhere = tie_schools(session, user.id) - _admin_schools(session, actor.user_id)
    if elsewhere:
        raise StaffRuleBroken("other_school", "this account has ties to another school")
    user.is_active = active
    session.add(user)
    ended = 0
    if not active:
        ended = session.exec(
            update(WebSession)
            .where(col(WebSession.user_id) == user.id, col(WebSession.revoked_at).is_(None))
            .values(revoked_at=now)
        ).rowcount
    audit.record(session, action="user.activate" if active else "user.deactivate",
                 school_id=school.id, actor_user_id=actor.user_id, target_type="user",
                 target_id=user.id, ip=actor.ip, before={"is_active": not active},
                 after={"is_active": active}, sessions_ended=ended)


def _names(roles: set[Role]) -> list[str]:
    return sorted(r.value for r in roles)


def tie_schools(session: Session, user_id: int) -> set[int]:
    """Every school the account is tied to: by a staff role, or by a guardianship (past,
    present or future) of one of its pupils."""
    roles = set(session.exec(select(RoleGrant.school_id).where(RoleGrant.user_id == user_id)))
    children = set(session.exec(
        select(Pupil.school_id).join(Guardianship, col(Guardianship.pupil_id) == col(Pupil.id))
        .where(Guardianship.user_id == user_id)))
    return roles | children


def _admin_schools(session: Session, user_id: int) -> set[int]:
    return set(session.exec(select(RoleGrant.school_id).where(
        RoleGrant.user_id == user_id, RoleGrant.role == Role.ADMIN)))


def _active_admins(session: Session, school_id: int) -> set[int]:
    return set(session.exec(
        select(RoleGrant.user_id).join(User, col(User.id) == col(RoleGrant.user_id))
        .where(RoleGrant.school_id == school_id, RoleGrant.role == Role.ADMIN,
               col(User.is_active).is_(True))))
