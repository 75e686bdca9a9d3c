"""Who sees how many watch a room: the director, the office and that room's teachers on
the 'on air' page and the health page; the room's wall screen with a device token that
never sits in an address (a cookie set once, or a bearer header)."""

from __future__ import annotations

import re

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import select

from school.db import immediate_session
from school.devices import add_device
from school.models import ClassroomStaff, DeviceKind, School
from tests.webcam.live import CameraSchool, login
from tests.webcam.test_node import pair_screen
from tests.webcam.test_stream_ends import watching
from webcam.pipeline import FrameKind


def node_token(engine: Engine, school_id: int) -> str:
    with immediate_session(engine) as session:
        school = session.get(School, school_id)
        assert school is not None
        _, token = add_device(session=session, school=school, kind=DeviceKind.CAMERA_NODE,
                              name="screen")
        session.commit()
    return token


def test_only_the_director_the_office_and_the_rooms_teachers_see_its_viewers(
    base: str, equipped: CameraSchool, engine: Engine
) -> None:
    cp, ce1 = (c.id or 0 for c in equipped.cameras)
    with immediate_session(engine) as session:  # the teacher keeps CE1 only
        session.delete(session.exec(select(ClassroomStaff).where(
            ClassroomStaff.classroom_id == equipped.school.rooms[0].id)).one())
        session.commit()
    parent = login(base, "parent@example.org")
    reader = watching(base, parent, "/parent/cameras", cp)
    reader.wait_for(FrameKind.LIVE)
    expected = {"admin@example.org": 200, "office@example.org": 200,
                "teacher@example.org": 404, "cashier@example.org": 404}
    for email, status in expected.items():
        staff = login(base, email)
        page = staff.get(f"/cameras/{cp}/on-air")
        assert page.status_code == status, email
        if status == 200:
            assert 'data-lit="yes"' in page.text
        assert staff.get(f"/cameras/{ce1}/on-air").status_code == (
            404 if email == "cashier@example.org" else 200)
        health = staff.get("/staff/health")
        counts = re.findall(r'<td class="num viewers">([^<]*)</td>', health.text)
        assert ("1" in counts) is (status == 200), (email, counts)
        staff.close()
    reader.close()
    parent.close()


def test_the_wall_screen_keeps_its_token_out_of_the_address(
    base: str, equipped: CameraSchool, engine: Engine
) -> None:
    cp = equipped.cameras[0].id or 0
    token = node_token(engine, equipped.school.school.id or 0)
    assert httpx.get(f"{base}/cameras/{cp}/on-air?device={token}").status_code in (303, 401)
    screen = pair_screen(base, cp, token)
    assert screen.get(f"/cameras/{cp}/on-air").status_code == 200
    cookie = next(c for c in screen.cookies.jar if c.name == "moulin_screen")
    assert cookie.path == "/cameras/"
    assert cookie.has_nonstandard_attr("HttpOnly")
    screen.close()
    bearer = httpx.get(f"{base}/cameras/{cp}/on-air", headers={"authorization": f"Bearer {token}"})
    assert bearer.status_code == 200
    wrong = httpx.Client(base_url=base)
    form = wrong.get(f"/cameras/{cp}/on-air/pair")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    refused = wrong.post(f"/cameras/{cp}/on-air/pair",
                         data={"csrf_token": csrf.group(1), "token": "wrong"})
    assert refused.status_code == 404
    assert "moulin_screen" not in wrong.cookies
    wrong.close()
