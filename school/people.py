"""Users, staff roles and guardianships: who may see which pupils."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import Session, col, select

from school import audit
from school.errors import Conflict, InvalidInput, NotFound
from school.models import (
    STAFF_ROLES,
    Classroom,
    Guardianship,
    Pupil,
    Role,
    RoleGrant,
    School,
    User,
)
from school.passwords import check_password
from school.security import hash_password


def normalise_email(email: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput(f"not a valid e-mail address: {email!r} ({exc})") from exc


def check_password_rules(password: str, *, email: str = "") -> None:
    """The rules of school.passwords, kept here under their old name for callers."""
    check_password(password, email=email)


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def create_user(
    *,
    session: Session,
    email: str,
    full_name: str = "",
    password: str | None = None,
    locale: str | None = None,
) -> User:
    email = normalise_email(email)
    if get_user_by_email(session, email) is not None:
        raise Conflict(f"a user with the e-mail {email} already exists")
    if password is not None:
        check_password_rules(password, email=email)
    user = User(
        email=email,
        full_name=full_name,
        password_hash=hash_password(password) if password is not None else None,
        locale=locale,
    )
    session.add(user)
    session.flush()
    return user


def grant_role(*, session: Session, user: User, school: School, role: Role) -> RoleGrant:
    if role not in STAFF_ROLES:
        raise InvalidInput(f"{role} is not a staff role; parents are linked to pupils instead")
    existing = session.exec(
        select(RoleGrant).where(
            RoleGrant.user_id == user.id, RoleGrant.school_id == school.id, RoleGrant.role == role
        )
    ).first()
    if existing is not None:
        return existing
    grant = RoleGrant(user_id=user.id, school_id=school.id, role=role)  # type: ignore[arg-type]
    session.add(grant)
    session.flush()
    return grant


def roles_of(
    session: Session, user_id: int, school_id: int | None = None, *, day: date
) -> set[Role]:
    """Staff roles granted, plus PARENT while the user is an active guardian on `day`
    (the school's today, from the caller's clock)."""
    query = select(RoleGrant.role).where(RoleGrant.user_id == user_id)
    if school_id is not None:
        query = query.where(RoleGrant.school_id == school_id)
    roles = {Role(r) for r in session.exec(query).all()}
    if children_of(session, user_id, day):
        roles.add(Role.PARENT)
    return roles


def staff_schools(session: Session, user_id: int) -> list[School]:
    query = (
        select(School)
        .join(RoleGrant, col(RoleGrant.school_id) == School.id)
        .where(RoleGrant.user_id == user_id)
        .distinct()
        .order_by(School.name)
    )
    return list(session.exec(query).all())


def link_guardian(
    *, session: Session, user: User, pupil: Pupil, starts_on: date, relation: str = ""
) -> Guardianship:
    """Link a guardian to a pupil from `starts_on`, unless an open link already exists."""
    current = session.exec(
        select(Guardianship).where(
            Guardianship.user_id == user.id,
            Guardianship.pupil_id == pupil.id,
            col(Guardianship.ends_on).is_(None),
        )
    ).first()
    if current is not None:
        return current
    link = Guardianship(
        user_id=user.id,  # type: ignore[arg-type]
        pupil_id=pupil.id,  # type: ignore[arg-type]
        starts_on=starts_on,
        relation=relation,
    )
    session.add(link)
    session.flush()
    return link


def end_guardianship(
    *, session: Session, link: Guardianship, ends_on: date, actor_user_id: int | None = None
) -> None:
    if ends_on < link.starts_on:
        raise InvalidInput("a guardianship cannot end before it starts")
    link.ends_on = ends_on
    session.add(link)
    audit.record(
        session,
        action="guardianship.end",
        actor_user_id=actor_user_id,
        target_type="guardianship",
        target_id=link.id or "",
        ends_on=ends_on.isoformat(),
    )


def _active_on(day: date) -> ColumnElement[bool]:
    return and_(
        col(Guardianship.starts_on) <= day,
        or_(col(Guardianship.ends_on).is_(None), col(Guardianship.ends_on) > day),
    )


def children_of(session: Session, user_id: int, day: date) -> Sequence[Pupil]:
    """The pupils a user is the guardian of on `day`: the only pupils a parent may see."""
    query = (
        select(Pupil)
        .join(Guardianship, col(Guardianship.pupil_id) == Pupil.id)
        .where(Guardianship.user_id == user_id, _active_on(day))
        .distinct()
        .order_by(Pupil.last_name, Pupil.first_name)
    )
    return session.exec(query).all()


def guardians_of(session: Session, pupil_id: int, day: date) -> Sequence[User]:
    query = (
        select(User)
        .join(Guardianship, col(Guardianship.user_id) == User.id)
        .where(Guardianship.pupil_id == pupil_id, _active_on(day))
        .order_by(User.email)
    )
    return session.exec(query).all()


def is_guardian_of(session: Session, user_id: int, pupil_id: int, day: date) -> bool:
    query = select(Guardianship.id).where(
        Guardianship.user_id == user_id, Guardianship.pupil_id == pupil_id, _active_on(day)
    )
    return session.exec(query).first() is not None


def classrooms_of(session: Session, school_id: int) -> Sequence[Classroom]:
    return session.exec(
        select(Classroom).where(Classroom.school_id == school_id).order_by(Classroom.name)
    ).all()


def pupils_in(session: Session, classroom_id: int) -> Sequence[Pupil]:
    return session.exec(
        select(Pupil)
        .where(Pupil.classroom_id == classroom_id, col(Pupil.left_on).is_(None))
        .order_by(Pupil.last_name, Pupil.first_name)
    ).all()


def get_school(session: Session, slug: str | None = None) -> School:
    query = select(School).order_by(col(School.id))
    if slug is not None:
        query = query.where(School.slug == slug)
    school = session.exec(query).first()
    if school is None:
        raise NotFound(f"no school {slug!r}" if slug else "no school yet: run `moulin school add`")
    return school
