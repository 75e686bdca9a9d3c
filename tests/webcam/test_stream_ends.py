"""A running stream ends with the session that opened it: logging out, a session revoked,
a password changed, an account deactivated or a role removed each stop every open
MJPEG stream of that user, over HTTP, within a second. Staff views end with the
school's session length too."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from school.db import immediate_session
from school.models import WebSession
from tests.conftest import FakeClock
from tests.factories import PASSWORD
from tests.webcam.live import CameraSchool, Reader, csrf, login, stream_urls, watch
from tests.webcam.test_api import views
from webcam.models import WebcamSettings
from webcam.pipeline import FrameKind

LIMIT = 1.0  # seconds


def watching(base: str, client: httpx.Client, page: str, camera_id: int) -> Reader:
    reader = watch(base, client, stream_urls(client.get(page).text)[camera_id])
    assert reader.status == 200
    reader.wait_for(FrameKind.LIVE)
    return reader


def assert_ends_within_a_second(reader: Reader, act: Callable[[], object]) -> None:
    """`act` returns once its change is committed (a password change hashes first)."""
    act()
    done = time.monotonic()
    assert reader.wait_end() - done < LIMIT
    assert reader.parts[-1].kind is FrameKind.ENDED


def logout(client: httpx.Client, page: str) -> None:
    done = client.post("/logout", data={"csrf_token": csrf(client, page)})
    assert done.status_code == 303


def session_ids(engine: Engine, user_id: int) -> list[int]:
    with immediate_session(engine) as session:
        rows = session.exec(select(WebSession.id).where(
            WebSession.user_id == user_id, WebSession.revoked_at == None))  # noqa: E711
        return [r for r in rows if r is not None]


@pytest.mark.parametrize("how", ["logout", "revoked_elsewhere", "password_changed"])
def test_a_parents_stream_ends_with_their_session(
    base: str, equipped: CameraSchool, engine: Engine, how: str
) -> None:
    cp = equipped.cameras[0].id or 0
    parent = login(base, "parent@example.org")
    reader = watching(base, parent, "/parent/cameras", cp)
    other = login(base, "parent@example.org")  # the same parent on another device
    watched_session, _ = session_ids(engine, equipped.school.parent.id or 0)

    def act() -> None:
        if how == "logout":
            logout(parent, "/parent/cameras")
        elif how == "revoked_elsewhere":
            token = csrf(other, "/account/sessions")
            done = other.post(f"/account/sessions/{watched_session}/revoke",
                              data={"csrf_token": token})
            assert done.status_code == 303
        else:
            token = csrf(other, "/account/password")
            done = other.post("/account/password", data={
                "csrf_token": token, "current": PASSWORD, "password": "a new long passphrase 7",
                "confirm": "a new long passphrase 7"})
            assert done.status_code == 303, done.text

    assert_ends_within_a_second(reader, act)
    assert [r.end_reason for r in views(engine, settled=1)] == ["signed_out"]
    reader.close()
    for client in (parent, other):
        client.close()


def test_every_stream_of_a_deactivated_member_of_staff_ends(
    base: str, equipped: CameraSchool, engine: Engine
) -> None:
    cp, ce1 = (c.id or 0 for c in equipped.cameras)
    office = login(base, "office@example.org")
    readers = [watching(base, office, f"/staff/cameras/{cid}", cid) for cid in (cp, ce1)]
    admin = login(base, "admin@example.org")
    school_id, office_id = equipped.school.school.id, equipped.school.office.id
    users = f"/admin/schools/{school_id}/users"

    def deactivate() -> None:
        done = admin.post(f"{users}/{office_id}/deactivate",
                          data={"csrf_token": csrf(admin, users)})
        assert done.status_code == 303

    assert_ends_within_a_second(readers[0], deactivate)
    assert readers[1].wait_end() is not None
    assert [r.end_reason for r in views(engine, settled=2)] == ["account_disabled"] * 2
    for reader in readers:
        reader.close()
    for client in (office, admin):
        client.close()


def test_a_teachers_stream_ends_when_the_role_is_removed(
    base: str, equipped: CameraSchool, engine: Engine
) -> None:
    cp = equipped.cameras[0].id or 0
    teacher = login(base, "teacher@example.org")
    reader = watching(base, teacher, f"/staff/cameras/{cp}", cp)
    admin = login(base, "admin@example.org")
    users = f"/admin/schools/{equipped.school.school.id}/users"

    def revoke() -> None:
        done = admin.post(f"{users}/{equipped.school.teacher.id}/roles/revoke",
                          data={"csrf_token": csrf(admin, users), "role": "teacher"})
        assert done.status_code == 303

    assert_ends_within_a_second(reader, revoke)
    assert [r.end_reason for r in views(engine, settled=1)] == ["not_guardian"]
    reader.close()
    for client in (teacher, admin):
        client.close()


def test_a_staff_view_ends_with_the_session_length(
    base: str, equipped: CameraSchool, engine: Engine, clock: FakeClock
) -> None:
    cp = equipped.cameras[0].id or 0
    office = login(base, "office@example.org")
    reader = watching(base, office, f"/staff/cameras/{cp}", cp)
    clock.advance(minutes=9)
    time.sleep(1.0)
    assert reader.ended_at is None  # nine minutes in: still watching
    assert_ends_within_a_second(reader, lambda: clock.advance(minutes=1))
    assert [r.end_reason for r in views(engine, settled=1)] == ["session_expired"]
    reader.close()
    office.close()


def set_quota(engine: Engine, school_id: int, minutes: int) -> None:
    with immediate_session(engine) as session:
        limits = session.get(WebcamSettings, school_id) or WebcamSettings(school_id=school_id)
        limits.daily_quota_minutes = minutes
        session.add(limits)
        session.commit()


def test_parallel_streams_share_one_daily_quota(
    base: str, equipped: CameraSchool, engine: Engine, clock: FakeClock
) -> None:
    set_quota(engine, equipped.school.school.id or 0, 1)
    parent = login(base, "parent@example.org")
    cp, ce1 = (c.id or 0 for c in equipped.cameras)
    first, second = (stream_urls(parent.get("/parent/cameras").text) for _ in range(2))
    readers = [watch(base, parent, url) for url in (first[cp], first[ce1], second[cp])]
    for reader in readers:
        assert reader.status == 200
        reader.wait_for(FrameKind.LIVE)
    clock.advance(seconds=15)  # 45 s of the minute used, by three streams together
    time.sleep(1.0)
    assert all(r.ended_at is None for r in readers)
    clock.advance(seconds=5)
    done = time.monotonic()
    for reader in readers:
        assert reader.wait_end() - done < LIMIT
        assert reader.parts[-1].kind is FrameKind.ENDED
    assert [r.end_reason for r in views(engine, settled=3)] == ["quota_exhausted"] * 3
    assert "quota_exhausted" in parent.get("/parent/cameras").text
    for reader in readers:
        reader.close()
    parent.close()
