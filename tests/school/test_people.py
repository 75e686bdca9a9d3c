"""Who may see which pupils: guardianships bounded in time, staff roles per school."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session, select

from school.clock import UTCDateTime
from school.errors import Conflict, InvalidInput
from school.models import AuditEvent, Guardianship, Role
from school.people import (
    children_of,
    create_user,
    end_guardianship,
    grant_role,
    guardians_of,
    is_guardian_of,
    roles_of,
)
from school.security import hash_password, verify_password
from tests.factories import START, SmallSchool


def test_a_parent_has_exactly_their_children(session: Session, small_school: SmallSchool) -> None:
    s = small_school
    names = [p.full_name for p in children_of(session, s.parent.id, date(2026, 10, 1))]  # type: ignore[arg-type]
    assert names == ["Jules Martin", "Léa Martin"]
    assert [p.full_name for p in children_of(session, s.other_parent.id, date(2026, 10, 1))] == [  # type: ignore[arg-type]
        "Hugo Bernard"
    ]
    assert children_of(session, s.parent.id, date(2026, 8, 31)) == []  # type: ignore[arg-type]


def test_ended_guardianship_ends_access_that_day(
    session: Session, small_school: SmallSchool
) -> None:
    s = small_school
    link = session.exec(select(Guardianship).where(Guardianship.pupil_id == s.pupils[0].id)).one()
    end_guardianship(session=session, link=link, ends_on=date(2026, 11, 1))
    session.commit()
    assert is_guardian_of(session, s.parent.id, s.pupils[0].id, date(2026, 10, 31))  # type: ignore[arg-type]
    assert not is_guardian_of(session, s.parent.id, s.pupils[0].id, date(2026, 11, 1))  # type: ignore[arg-type]
    assert guardians_of(session, s.pupils[0].id, date(2026, 11, 2)) == []  # type: ignore[arg-type]
    assert session.exec(select(AuditEvent.action)).all() == ["guardianship.end"]
    with pytest.raises(InvalidInput):
        end_guardianship(session=session, link=link, ends_on=START.replace(day=1, month=1))


def test_roles(session: Session, small_school: SmallSchool) -> None:
    s = small_school
    day = date(2026, 10, 1)
    assert roles_of(session, s.parent.id, day=day) == {Role.PARENT}  # type: ignore[arg-type]
    assert roles_of(session, s.cashier.id, day=day) == {Role.CASHIER}  # type: ignore[arg-type]
    grant_role(session=session, user=s.parent, school=s.school, role=Role.TEACHER)
    assert roles_of(session, s.parent.id, day=day) == {Role.PARENT, Role.TEACHER}  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        grant_role(session=session, user=s.parent, school=s.school, role=Role.PARENT)


def test_emails_are_normalised_and_unique(session: Session) -> None:
    user = create_user(
        session=session, email=" Anne.Martin@Example.ORG ", password="long enough pw"
    )
    assert user.email == "anne.martin@example.org"
    with pytest.raises(Conflict):
        create_user(session=session, email="anne.martin@example.org")
    with pytest.raises(InvalidInput, match="not a valid e-mail"):
        create_user(session=session, email="anne@")


def test_passwords_are_argon2_and_salted() -> None:
    a, b = hash_password("same password"), hash_password("same password")
    assert a.startswith("$argon2id$")
    assert a != b
    assert verify_password("same password", a)
    assert not verify_password("Same password", a)
    assert not verify_password("anything", None)


def test_naive_datetimes_are_refused() -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), None)  # type: ignore[arg-type]
