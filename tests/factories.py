"""Builders for test records, so tests say only what matters to them."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session

from cardpay.models import LedgerTransaction
from school.models import Classroom, Device, DeviceKind, Pupil, Role, School, User
from school.people import create_user, grant_role, link_guardian
from school.security import hash_password

PASSWORD = "correct horse battery"
START = date(2026, 9, 1)


def school(session: Session, slug: str = "ecole", name: str = "École des Moulins") -> School:
    record = School(slug=slug, name=name)
    session.add(record)
    session.flush()
    return record


def classroom(session: Session, school: School, name: str) -> Classroom:
    record = Classroom(school_id=school.id, name=name)  # type: ignore[arg-type]
    session.add(record)
    session.flush()
    return record


def pupil(session: Session, room: Classroom, first: str, last: str, **fields: object) -> Pupil:
    record = Pupil(
        school_id=room.school_id,
        classroom_id=room.id,
        first_name=first,
        last_name=last,
        external_ref=fields.pop("external_ref", f"{last}-{first}".lower()),
        **fields,  # type: ignore[arg-type]
    )
    session.add(record)
    session.flush()
    return record


@functools.cache
def _hash(password: str) -> str:
    # argon2 is slow on purpose; one hash per password per test run keeps tests quick.
    return hash_password(password)


def user(session: Session, email: str, *, name: str = "", password: str = PASSWORD) -> User:
    record = create_user(session=session, email=email, full_name=name or email)
    record.password_hash = _hash(password)
    session.add(record)
    return record


@dataclass
class SmallSchool:
    school: School
    rooms: list[Classroom]
    pupils: list[Pupil]
    parent: User  # guardian of pupils[0] and pupils[2], in two rooms
    other_parent: User  # guardian of pupils[1] only
    teacher: User
    cashier: User
    office: User
    admin: User


def small_school(session: Session) -> SmallSchool:
    s = school(session)
    rooms = [classroom(session, s, "CP"), classroom(session, s, "CE1")]
    pupils = [
        pupil(session, rooms[0], "Léa", "Martin", allergies="arachide"),
        pupil(session, rooms[0], "Hugo", "Bernard"),
        pupil(session, rooms[1], "Jules", "Martin"),
    ]
    parent = user(session, "parent@example.org", name="Anne Martin")
    other = user(session, "other@example.org", name="Paul Bernard")
    link_guardian(session=session, user=parent, pupil=pupils[0], starts_on=START)
    link_guardian(session=session, user=parent, pupil=pupils[2], starts_on=START)
    link_guardian(session=session, user=other, pupil=pupils[1], starts_on=START)
    staff = {}
    for role in (Role.TEACHER, Role.CASHIER, Role.OFFICE, Role.ADMIN):
        staff[role] = user(session, f"{role.value}@example.org", name=role.value.title())
        grant_role(session=session, user=staff[role], school=s, role=role)
    session.commit()
    return SmallSchool(
        s,
        rooms,
        pupils,
        parent,
        other,
        staff[Role.TEACHER],
        staff[Role.CASHIER],
        staff[Role.OFFICE],
        staff[Role.ADMIN],
    )


def meal(session: Session, pupil: Pupil, cents: int, *, at: datetime,
         device: Device | None = None, client_id: str | None = None) -> LedgerTransaction:
    """A meal posted the way the till posts one (overdraft allowed, as if served offline)."""
    from cardpay.accounts import pupil_account, school_account
    from cardpay.ledger import post
    from cardpay.models import AccountKind, TransactionKind

    account = pupil_account(session=session, pupil=pupil)
    revenue = school_account(session=session, school_id=pupil.school_id,
                             kind=AccountKind.MEAL_REVENUE)
    return post(session=session, school_id=pupil.school_id, kind=TransactionKind.MEAL,
                client_id=client_id or f"tap:{pupil.id}:{at.isoformat()}",
                legs=[(account, -cents), (revenue, cents)], occurred_at=at,
                actor_device_id=device.id if device else None, enforce_floors=False,
                clock=lambda: at).transaction


def till(session: Session, school: School, name: str = "Till 1") -> Device:
    from school.devices import add_device

    device, _ = add_device(session=session, school=school, kind=DeviceKind.TILL, name=name)
    session.commit()
    return device


def balance_of(session: Session, pupil: Pupil) -> int:
    """A pupil's balance as committed now, 0 without an account (read-only: opening the
    account here would hold SQLite's write lock against the server under test)."""
    from sqlmodel import select

    from cardpay.models import Account

    session.rollback()
    found = session.exec(select(Account.balance_cents)
                         .where(Account.pupil_id == pupil.id)).first()
    return int(found or 0)
