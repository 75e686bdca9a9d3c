"""The demo's cameras: a mock IP camera per class, wired in as that class's camera.

Broadcast slots cover every day from 7:00 to 20:00 so that whoever tries the demo sees
live video whenever they try it (a real school sets its class hours and leaves out
breaks, naps and changing times), and every consent the rooms need is on record.
"""

from __future__ import annotations

from datetime import datetime, time

from sqlmodel import Session, col, select

from firmware_mocks.ip_camera import IPCamera
from school.models import Classroom, School, User
from webcam import admin, consents, schedule
from webcam.access import required_consents

DEMO_SLOT = (time(7), time(20))


def start_mocks(count: int, *, fps: float = 10.0) -> list[IPCamera]:
    """One mock camera per class, each on a free loopback port."""
    return [IPCamera(width=640, height=480, fps=fps).start() for _ in range(count)]


def seed_cameras(
    session: Session, *, school: School, urls: list[str], secret_key: str, now: datetime
) -> None:
    rooms = list(session.exec(select(Classroom).where(Classroom.school_id == school.id)
                              .order_by(col(Classroom.id))))
    director = session.exec(select(User).where(User.email == "admin@demo.moulin")).one()
    office = session.exec(select(User).where(User.email == "office@demo.moulin")).one()
    assert director.id is not None
    assert office.id is not None
    for room, url in zip(rooms, urls, strict=False):
        admin.add_camera(session=session, classroom=room, name=f"Caméra {room.name}",
                         source=url, secret_key=secret_key, actor_user_id=director.id)
        for weekday in range(7):
            schedule.add_slot(session=session, classroom=room, weekday=weekday,
                              starts=DEMO_SLOT[0], ends=DEMO_SLOT[1],
                              actor_user_id=director.id)
        today = now.date()
        for needed in required_consents(session, room.id or 0, day=today, now=now):
            consents.record_consent(
                session=session, classroom=room, user_id=needed.user.id or 0,
                document_ref="formulaire papier (démo)", actor_user_id=office.id,
                now=now, today=today,
            )
