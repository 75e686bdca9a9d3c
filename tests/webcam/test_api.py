"""The streaming API over HTTP, through the whole portal: who gets a stream, with which
status the others are refused, signed URLs, and the viewing log."""

from __future__ import annotations

import itertools
import time
from datetime import date, datetime, timedelta
from datetime import time as clock_time

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from parent_portal.app import create_app
from school.db import immediate_session
from school.models import WebSession
from school.security import token_digest
from school.settings import Settings
from tests.conftest import FakeClock
from tests.webcam.live import (
    CameraSchool,
    active_consents,
    guardianships,
    login,
    serve,
    set_slots,
    stream_urls,
    watch,
)
from webcam.models import Camera, CameraConsent, CameraView
from webcam.pipeline import FrameKind
from webcam.snapshots import SNAPSHOT_VIEW
from webcam.tokens import TOKEN_TTL, sign_for_session

SECRET_KEY = "t" * 40  # the test settings' secret key


def signed(session: Session, client: httpx.Client, camera_id: int, now: datetime,
           kind: str = "stream.mjpg") -> str:
    """A URL signed for this client's session, as a page would give it. It proves the
    session, not the right to watch: the matrix asks for rooms no page would show."""
    cookie = client.cookies.get("moulin_session")
    assert cookie
    session.rollback()  # a fresh snapshot: the login just happened on the server
    web = session.exec(select(WebSession).where(
        WebSession.token_sha256 == token_digest(cookie))).one()
    session.rollback()  # hold no read transaction: the server writes meanwhile
    token = sign_for_session(SECRET_KEY, camera_id=camera_id, session_id=web.id or 0, now=now)
    return f"/cameras/{camera_id}/{kind}?t={token}"


def open_status(client: httpx.Client, url: str) -> int:
    """The status a stream opens with; a served stream starts with a part at once."""
    with client.stream("GET", url) as response:
        if response.status_code == 200:
            assert response.headers["content-type"].startswith("multipart/x-mixed-replace")
            assert response.headers["cache-control"].startswith("no-store")
            assert next(response.iter_raw()).startswith(b"--moulinframe")
        return response.status_code


def views(engine: Engine, *, settled: int = 0, timeout: float = 3.0) -> list[CameraView]:
    """The viewing log, once at least `settled` rows have their end written."""
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as session:
            rows = list(session.exec(select(CameraView).order_by(CameraView.id)))  # type: ignore[arg-type]
        if sum(r.ended_at is not None for r in rows) >= settled or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_a_parent_watches_their_childs_rooms_live(base: str, equipped: CameraSchool) -> None:
    client = login(base, "parent@example.org")
    page = client.get("/parent/cameras")
    assert page.status_code == 200
    urls = stream_urls(page.text)
    assert set(urls) == {c.id for c in equipped.cameras}
    with watch(base, client, urls[equipped.cameras[0].id or 0]) as reader:
        assert reader.status == 200
        reader.wait_for(FrameKind.LIVE)
    client.close()


def _apply_state(engine: Engine, school: CameraSchool, *, inside: bool, paused: bool,
                 consent: bool, ended: bool, now: datetime) -> None:
    with immediate_session(engine) as session:
        _change(session, school, inside=inside, paused=paused, consent=consent, ended=ended,
                now=now)
        session.commit()


def _change(session: Session, school: CameraSchool, *, inside: bool, paused: bool,
            consent: bool, ended: bool, now: datetime) -> None:
    today = date(2026, 11, 24)
    for room, camera_id in zip(school.school.rooms, [c.id for c in school.cameras],
                               strict=True):
        camera = session.get(Camera, camera_id)
        assert camera is not None
        set_slots(session, room.id or 0, *((clock_time(8), clock_time(16)) if inside
                                          else (clock_time(14), clock_time(16))))
        camera.paused = paused
        session.add(camera)
        teacher_consent = session.exec(select(CameraConsent).where(
            CameraConsent.classroom_id == room.id,
            CameraConsent.user_id == school.school.teacher.id)).one()
        teacher_consent.withdrawn_at = None if consent else now - timedelta(minutes=1)
        session.add(teacher_consent)
    for guardian in (school.school.parent, school.school.other_parent):
        for link in guardianships(session, guardian.id or 0):
            link.ends_on = today if ended else None
            session.add(link)


GUARDIANS = {"parent@example.org": {0, 1}, "other@example.org": {0}}  # their children's rooms


def test_authorisation_matrix(base: str, equipped: CameraSchool, session: Session,
                              engine: Engine, clock: FakeClock) -> None:
    """Every guardian × every camera × inside or outside the slots × paused or not ×
    consent complete or not × guardianship ended or not."""
    clients = {email: login(base, email) for email in GUARDIANS}
    seen: dict[int, int] = {}
    try:
        for inside, paused, consent, ended in itertools.product((True, False), repeat=4):
            _apply_state(engine, equipped, inside=inside, paused=paused, consent=consent,
                         ended=ended, now=clock())
            for (email, rooms), (index, camera) in itertools.product(
                    GUARDIANS.items(), enumerate(equipped.cameras)):
                if index not in rooms or ended:
                    expected = 404  # not revealed: the same as a camera that does not exist
                elif not (inside and consent) or paused:
                    expected = 423
                else:
                    expected = 200
                client = clients[email]
                got = open_status(client, signed(session, client, camera.id or 0, clock()))
                case = f"{email} camera {index} inside={inside} paused={paused} " \
                       f"consent={consent} ended={ended}"
                assert got == expected, case
                seen[got] = seen.get(got, 0) + 1
    finally:
        for client in clients.values():
            client.close()
    assert seen == {200: 3, 404: 40, 423: 21}


def test_refusals_explain_themselves_only_when_that_reveals_nothing(
    base: str, equipped: CameraSchool, session: Session, clock: FakeClock
) -> None:
    client = login(base, "other@example.org")
    client.headers["accept"] = "application/json"
    mine, theirs = equipped.cameras
    missing = signed(session, client, 999, clock())
    not_mine = client.get(signed(session, client, theirs.id or 0, clock()))
    assert not_mine.status_code == 404
    assert client.get(missing).json() == not_mine.json()
    mine.paused = True
    session.add(mine)
    session.commit()
    paused = client.get(signed(session, client, mine.id or 0, clock(), "snapshot.jpg"))
    assert paused.status_code == 423
    client.close()


def test_staff_see_their_rooms_at_any_hour_but_never_paused(
    base: str, equipped: CameraSchool, session: Session, clock: FakeClock
) -> None:
    for room in equipped.school.rooms:
        set_slots(session, room.id or 0, clock_time(14), clock_time(16))
    session.commit()
    for email, expected in (("teacher@example.org", 200), ("office@example.org", 200),
                            ("admin@example.org", 200), ("cashier@example.org", 404)):
        client = login(base, email)
        for camera in equipped.cameras:
            assert open_status(client, signed(session, client, camera.id or 0, clock())) \
                == expected, email
        client.close()
    equipped.cameras[0].paused = True
    session.add(equipped.cameras[0])
    session.commit()
    client = login(base, "teacher@example.org")
    assert open_status(client, signed(session, client, equipped.cameras[0].id or 0,
                                      clock())) == 423
    client.close()


def test_signed_urls_expire_and_bind_session_and_camera(
    base: str, equipped: CameraSchool, session: Session, clock: FakeClock
) -> None:
    first, second = login(base, "parent@example.org"), login(base, "parent@example.org")
    cp, ce1 = (c.id or 0 for c in equipped.cameras)
    url = stream_urls(first.get("/parent/cameras").text)[cp]
    assert open_status(first, url) == 200
    assert open_status(second, url) == 403  # the same parent, another session
    assert open_status(first, url.replace(f"/cameras/{cp}/", f"/cameras/{ce1}/")) == 403
    assert first.get(url.replace("stream.mjpg", "snapshot.jpg")).status_code == 200
    token = url.partition("?t=")[2]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert open_status(first, url.replace(token, forged)) == 403
    assert open_status(first, f"/cameras/{cp}/stream.mjpg") == 403
    assert open_status(first, f"/cameras/{cp}/stream.mjpg?t=garbage") == 403
    clock.advance(seconds=TOKEN_TTL + 1)
    assert open_status(first, url) == 403  # expired; a fresh page gives a fresh URL
    assert open_status(first, stream_urls(first.get("/parent/cameras").text)[cp]) == 200
    anonymous = httpx.Client(base_url=base, headers={"accept": "application/json"})
    assert open_status(anonymous, url) == 401
    for client in (first, second, anonymous):
        client.close()


def test_every_view_is_logged_with_its_start_end_and_reason(
    base: str, equipped: CameraSchool, session: Session, engine: Engine, clock: FakeClock
) -> None:
    client = login(base, "parent@example.org")
    client.headers["user-agent"] = "test-browser/1.0"
    cp = equipped.cameras[0].id or 0
    with watch(base, client, signed(session, client, cp, clock())) as reader:
        reader.wait_for(FrameKind.LIVE)
    assert client.get(signed(session, client, cp, clock(), "snapshot.jpg")).status_code == 200
    rows = views(engine, settled=2)
    assert [(r.camera_id, r.user_id, r.end_reason, r.ip, r.user_agent, r.via) for r in rows] \
        == [(cp, equipped.school.parent.id, "closed", "127.0.0.1", "test-browser/1.0", "portal"),
            (cp, equipped.school.parent.id, "snapshot", "127.0.0.1", "test-browser/1.0",
             "portal")]
    assert all(r.started_at == clock() for r in rows)
    # A snapshot's entry ends when its 'on air' light goes out (webcam.snapshots).
    assert [r.ended_at for r in rows] == [clock(), clock() + SNAPSHOT_VIEW]
    log = client.get("/parent/cameras/log")
    assert log.status_code == 200
    assert log.text.count("<tr>") == 3  # a header and the two views
    client.close()
    assert active_consents(session, equipped.school.rooms[0].id or 0)
    assert {c.id for c in equipped.cameras} == set(session.exec(select(Camera.id)).all())


@pytest.mark.parametrize("reader", ["admin@example.org", "office@example.org"])
def test_the_director_reads_everyones_log(base: str, equipped: CameraSchool, session: Session,
                                          clock: FakeClock, reader: str) -> None:
    parent = login(base, "parent@example.org")
    assert parent.get(signed(session, parent, equipped.cameras[0].id or 0, clock(),
                             "snapshot.jpg")).status_code == 200
    parent.close()
    school_id = equipped.school.school.id
    staff = login(base, reader)
    page = staff.get(f"/staff/schools/{school_id}/camera-log")
    if reader == "admin@example.org":
        assert page.status_code == 200
        assert "Anne Martin" in page.text
    else:
        assert page.status_code == 403
    parent = login(base, "parent@example.org")
    assert parent.get(f"/staff/schools/{school_id}/camera-log").status_code == 403
    parent.close()
    staff.close()


def test_production_without_https_serves_no_stream(
    settings: Settings, engine: Engine, clock: FakeClock, equipped: CameraSchool,
    session: Session,
) -> None:
    # Production needs its card master key configured (tills refuse to guess one).
    production = settings.model_copy(update={"environment": "production", "https": False,
                                             "card_master_key": "ab" * 16})
    with serve(create_app(production, engine, clock=clock)) as base:
        client = login(base, "parent@example.org")
        assert open_status(client, signed(session, client, equipped.cameras[0].id or 0,
                                          clock())) == 403
        client.close()
