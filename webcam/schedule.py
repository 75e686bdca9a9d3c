"""The broadcast schedule: weekly slots per room, and the school calendar's closed days.

Slots are in the school's local time; a room with no slot never broadcasts to parents.
Every change is audited; the caller commits.
"""

from __future__ import annotations

from datetime import date, time

from sqlmodel import Session, select

from school import audit
from school.errors import Conflict, InvalidInput
from school.models import Classroom, ClosedDay
from webcam.models import BroadcastSlot
from webcam.policy import Slot


def parse_time(text: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(f"not a time of day: {text!r} (use 08:30)") from exc


def add_slot(
    *, session: Session, classroom: Classroom, weekday: int, starts: time, ends: time,
    actor_user_id: int, ip: str | None = None,
) -> BroadcastSlot:
    try:
        Slot(weekday, starts, ends)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    for other in session.exec(select(BroadcastSlot).where(
        BroadcastSlot.classroom_id == classroom.id, BroadcastSlot.weekday == weekday
    )).all():
        if other.starts_at < ends and starts < other.ends_at:
            raise Conflict("this slot overlaps another one on the same day")
    slot = BroadcastSlot(classroom_id=classroom.id, weekday=weekday,  # type: ignore[arg-type]
                         starts_at=starts, ends_at=ends)
    session.add(slot)
    session.flush()
    audit.record(session, action="camera.slot_add", school_id=classroom.school_id,
                 actor_user_id=actor_user_id, target_type="classroom",
                 target_id=classroom.id or "", ip=ip, weekday=weekday,
                 starts=starts.isoformat("minutes"), ends=ends.isoformat("minutes"))
    return slot


def delete_slot(
    *, session: Session, slot: BroadcastSlot, school_id: int, actor_user_id: int,
    ip: str | None = None,
) -> None:
    audit.record(session, action="camera.slot_delete", school_id=school_id,
                 actor_user_id=actor_user_id, target_type="classroom",
                 target_id=slot.classroom_id, ip=ip, weekday=slot.weekday,
                 starts=slot.starts_at.isoformat("minutes"),
                 ends=slot.ends_at.isoformat("minutes"))
    session.delete(slot)


def add_closed_day(
    *, session: Session, school_id: int, day: date, label: str, actor_user_id: int,
    ip: str | None = None,
) -> ClosedDay:
    exists = session.exec(select(ClosedDay.id).where(
        ClosedDay.school_id == school_id, ClosedDay.day == day
    )).first()
    if exists is not None:
        raise Conflict("that day is already closed")
    closed = ClosedDay(school_id=school_id, day=day, label=label.strip()[:100])
    session.add(closed)
    session.flush()
    audit.record(session, action="calendar.close_day", school_id=school_id,
                 actor_user_id=actor_user_id, target_type="closed_day",
                 target_id=closed.id or "", ip=ip, day=day.isoformat(), label=closed.label)
    return closed


def delete_closed_day(
    *, session: Session, closed: ClosedDay, actor_user_id: int, ip: str | None = None
) -> None:
    audit.record(session, action="calendar.reopen_day", school_id=closed.school_id,
                 actor_user_id=actor_user_id, target_type="closed_day",
                 target_id=closed.id or "", ip=ip, day=closed.day.isoformat())
    session.delete(closed)
