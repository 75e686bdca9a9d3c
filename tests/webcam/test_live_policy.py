"""A running stream, over HTTP, obeys within a second: a pause (made here or by another
process), the end of its slot, a consent withdrawn, a guardianship ended."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from datetime import time as clock_time

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from school.db import immediate_session
from school.models import Guardianship, Pupil
from school.people import end_guardianship
from tests.conftest import FakeClock
from tests.webcam.live import CameraSchool, Reader, csrf, login, set_slots, stream_urls, watch
from tests.webcam.test_api import views
from webcam.models import Camera, CameraConsent
from webcam.pipeline import FrameKind

LIMIT = 1.0  # seconds


def watching_cp(base: str, school: CameraSchool) -> tuple[httpx.Client, Reader]:
    client = login(base, "parent@example.org")
    urls = stream_urls(client.get("/parent/cameras").text)
    reader = watch(base, client, urls[school.cameras[0].id or 0])
    assert reader.status == 200
    reader.wait_for(FrameKind.LIVE)
    return client, reader


def assert_paused_for_good(reader: Reader, mark: int, *, at_once: bool) -> None:
    """Once the card has come, nothing live follows. A pause made in this process stops
    the capture at once (only a frame already on its way may still arrive first); one
    written by another process is seen by the next policy check."""
    kinds = [p.kind for p in reader.parts[mark:]]
    first = kinds.index(FrameKind.PAUSED)
    assert set(kinds[first:]) == {FrameKind.PAUSED}, kinds
    assert first <= (2 if at_once else 10), kinds


def in_db(engine: Engine, change: Callable[[Session], None]) -> None:
    """A change made by someone else: another server process, a script, an import."""
    with immediate_session(engine) as session:
        change(session)
        session.commit()


def test_a_pause_from_the_staff_page_reaches_the_viewer_within_a_second(
    base: str, equipped: CameraSchool
) -> None:
    client, reader = watching_cp(base, equipped)
    camera_id = equipped.cameras[0].id
    teacher = login(base, "teacher@example.org")
    token = csrf(teacher, "/staff/cameras")
    mark, before = len(reader.parts), time.monotonic()
    done = teacher.post(f"/staff/cameras/{camera_id}/pause",
                        data={"csrf_token": token, "next": "/staff/cameras"})
    assert done.status_code == 303
    assert reader.wait_for(FrameKind.PAUSED, after=mark) - before < LIMIT
    time.sleep(1.0)
    assert_paused_for_good(reader, mark, at_once=True)
    mark = len(reader.parts)
    teacher.post(f"/staff/cameras/{camera_id}/resume", data={"csrf_token": token})
    reader.wait_for(FrameKind.LIVE, after=mark)
    for c in (client, teacher):
        c.close()
    reader.close()


def test_a_pause_written_by_another_process_reaches_the_viewer_within_a_second(
    base: str, equipped: CameraSchool, engine: Engine
) -> None:
    client, reader = watching_cp(base, equipped)

    def pause(session: Session) -> None:
        camera = session.get(Camera, equipped.cameras[0].id)
        assert camera is not None
        camera.paused = True
        session.add(camera)

    mark, before = len(reader.parts), time.monotonic()
    in_db(engine, pause)
    assert reader.wait_for(FrameKind.PAUSED, after=mark) - before < LIMIT
    time.sleep(1.0)
    assert_paused_for_good(reader, mark, at_once=False)
    reader.close()
    client.close()


def test_the_end_of_the_slot_reaches_the_viewer_within_a_second(
    base: str, equipped: CameraSchool, engine: Engine, clock: FakeClock
) -> None:
    with immediate_session(engine) as session:  # the slot ends at 11:31 local, 10:31 UTC
        set_slots(session, equipped.school.rooms[0].id or 0, clock_time(8), clock_time(11, 31))
        session.commit()
    client, reader = watching_cp(base, equipped)
    mark, before = len(reader.parts), time.monotonic()
    clock.advance(minutes=1)
    assert reader.wait_for(FrameKind.OUTSIDE_HOURS, after=mark) - before < LIMIT
    reader.close()
    client.close()


def test_a_consent_withdrawn_ends_the_stream_within_a_second(
    base: str, equipped: CameraSchool, engine: Engine, clock: FakeClock
) -> None:
    client, reader = watching_cp(base, equipped)
    office = login(base, "office@example.org")
    room_id = equipped.school.rooms[0].id
    page = office.get(f"/staff/classes/{room_id}/consents")
    with immediate_session(engine) as session:
        consent = session.exec(select(CameraConsent).where(
            CameraConsent.classroom_id == room_id,
            CameraConsent.user_id == equipped.school.other_parent.id)).one()
    before = time.monotonic()
    done = office.post(f"/staff/classes/{room_id}/consents/{consent.id}/withdraw",
                       data={"csrf_token": csrf(office, f"/staff/classes/{room_id}/consents")})
    assert done.status_code == 303
    reader.wait_for(FrameKind.ENDED)
    assert reader.wait_end() - before < LIMIT
    assert "Hugo" not in page.text  # the consent page names guardians, not pupils
    rows = views(engine, settled=1)
    assert [r.end_reason for r in rows] == ["consent_missing"]
    client.close()
    office.close()
    reader.close()
    again = login(base, "parent@example.org")
    assert "consent_missing" in again.get("/parent/cameras").text
    again.close()


@pytest.mark.parametrize("how", ["guardianship", "pupil_left", "pupil_moved"])
def test_losing_the_child_ends_the_stream_within_a_second(
    base: str, equipped: CameraSchool, engine: Engine, how: str
) -> None:
    client, reader = watching_cp(base, equipped)
    lea = equipped.school.pupils[0]

    def lose(session: Session) -> None:
        if how == "guardianship":
            link = session.exec(select(Guardianship).where(
                Guardianship.pupil_id == lea.id,
                Guardianship.user_id == equipped.school.parent.id)).one()
            end_guardianship(session=session, link=link, ends_on=date(2026, 11, 24))
            return
        pupil = session.get(Pupil, lea.id)
        assert pupil is not None
        if how == "pupil_left":
            pupil.left_on = date(2026, 11, 24)
        else:
            pupil.classroom_id = equipped.school.rooms[1].id
        session.add(pupil)

    before = time.monotonic()
    in_db(engine, lose)
    assert reader.wait_end() - before < LIMIT
    assert reader.parts[-1].kind is FrameKind.ENDED
    expected = {"guardianship": "guardianship_ended", "pupil_left": "not_enrolled",
                "pupil_moved": "not_guardian"}[how]
    assert [r.end_reason for r in views(engine, settled=1)] == [expected]
    reader.close()
    client.close()
