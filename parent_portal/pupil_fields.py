"""Which role sees which field of which pupil: the table of docs/accounts.md, in code.

| field                           | teacher          | cashier          | office, admin |
| ------------------------------- | ---------------- | ---------------- | ------------- |
| name, class                     | own classes      | at a tap (till)  | school        |
| allergies, diet, photo          | own classes      | at a tap (till)  | school        |
| tariff band                     | -                | -                | school        |
| balance, statement, receipts    | -                | at a tap: balance| school        |

'Own classes' are those the teacher is linked to (`ClassroomStaff`). 'At a tap' is the
till screen: the verdict of a tap shows the pupil's name, photo, allergies and new
balance, and a cashier may load the photo of a pupil who tapped a till of their school
today, nothing else. Guardians see all of this for their own children (a separate check:
`parent_portal.money_access.own_child`). Every staff page about pupils asks here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from cardpay.models import Tap
from parent_portal.access import school_ids_with
from school.models import Classroom, ClassroomStaff, Device, Pupil, Role, School

RECORD_ROLES = frozenset({Role.OFFICE, Role.ADMIN})
TEACHERS = frozenset({Role.TEACHER})
CASHIERS = frozenset({Role.CASHIER})


class PupilField(enum.StrEnum):
    IDENTITY = "identity"  # name and class
    CARE = "care"  # allergies, diet notes, photo
    TARIFF = "tariff"  # tariff band: a proxy for the family's income
    MONEY = "money"  # balance, statement, receipts


EVERYTHING = frozenset(PupilField)
CLASS_LIST = frozenset({PupilField.IDENTITY, PupilField.CARE})


def taught_rooms(session: Session, user_id: int) -> set[int]:
    """The classrooms the user teaches, in schools where they hold the teacher role."""
    teaching = school_ids_with(session, user_id, TEACHERS)
    rows = session.exec(
        select(ClassroomStaff.classroom_id)
        .join(Classroom, col(Classroom.id) == col(ClassroomStaff.classroom_id))
        .where(ClassroomStaff.user_id == user_id, col(Classroom.school_id).in_(teaching))
    ).all()
    return set(rows)


def room_fields(session: Session, user_id: int, room: Classroom) -> frozenset[PupilField]:
    """What the user sees of the pupils on a class list (nothing: not theirs to see)."""
    if room.school_id in school_ids_with(session, user_id, RECORD_ROLES):
        return EVERYTHING
    if room.id in taught_rooms(session, user_id):
        return CLASS_LIST
    return frozenset()


def visible_rooms(session: Session, user_id: int, school: School,
                  rooms: Iterable[Classroom]) -> list[Classroom]:
    """The classes of `school` whose pupils the user may list."""
    if school.id in school_ids_with(session, user_id, RECORD_ROLES):
        return list(rooms)
    taught = taught_rooms(session, user_id)
    return [room for room in rooms if room.id in taught]


def tapped_today(session: Session, pupil: Pupil, since: datetime) -> bool:
    """Whether the pupil tapped a till of their school since `since` (today's midnight)."""
    found = session.exec(
        select(Tap.id).join(Device, col(Device.id) == col(Tap.device_id))
        .where(Tap.pupil_id == pupil.id, Device.school_id == pupil.school_id,
               col(Tap.received_at) >= since).limit(1)
    ).first()
    return found is not None


def sees_photo(session: Session, user_id: int, pupil: Pupil, since: datetime) -> bool:
    """A staff member's right to a pupil's photo (guardians are checked apart)."""
    if pupil.school_id in school_ids_with(session, user_id, RECORD_ROLES):
        return True
    if pupil.classroom_id is not None and pupil.classroom_id in taught_rooms(session, user_id):
        return True
    return (pupil.school_id in school_ids_with(session, user_id, CASHIERS)
            and tapped_today(session, pupil, since))
