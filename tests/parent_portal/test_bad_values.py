"""A value the database cannot hold is the request's fault: a clear 400, nothing written,
never a server error."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from parent_portal.app import create_app
from school.db import make_engine
from school.migrate import upgrade
from school.models import Role
from school.people import grant_role
from school.settings import Settings
from tests import factories
from tests.conftest import FakeClock
from tests.factories import SmallSchool
from tests.parent_portal.conftest import TestClient, csrf_from, signed_in

PAST_SQLITE = 2**63  # no SQLite INTEGER holds it
PAST_POSTGRES = 2**31  # no PostgreSQL integer column holds it


def test_ids_past_what_sqlite_holds_are_bad_requests(client: TestClient,
                                                     small_school: SmallSchool) -> None:
    signed_in(client, "office@example.org")
    for path in (f"/staff/pupils/{PAST_SQLITE}/money", f"/staff/classes/{PAST_SQLITE}",
                 f"/till/{PAST_SQLITE}", f"/staff/cards/enrol?pupil={PAST_SQLITE}"):
        response = client.get(path)
        assert response.status_code == 400, path
        assert "La demande n&#39;est pas valable." in response.text
    json = client.get(f"/staff/pupils/{PAST_SQLITE}/money", headers={"Accept": "application/json"})
    assert json.status_code == 400
    assert json.json() == {"detail": "La demande n'est pas valable."}


@pytest.mark.postgres
def test_on_postgresql_too(pg_url: str, settings: Settings, clock: FakeClock) -> None:
    engine: Engine = make_engine(pg_url)
    upgrade(engine)
    with Session(engine) as session:
        school = factories.school(session)
        room = factories.classroom(session, school, "CP")
        factories.pupil(session, room, "Léa", "Martin")
        office = factories.user(session, "office@example.org")
        grant_role(session=session, user=office, school=school, role=Role.OFFICE)
        session.commit()
        room_id = room.id
    try:
        with TestClient(create_app(settings, engine, clock=clock), follow_redirects=False) as c:
            signed_in(c, "office@example.org")
            assert c.get(f"/staff/pupils/{PAST_POSTGRES}/money").status_code == 400
            page = c.get("/staff/cameras")
            assert page.status_code == 200
            # A name longer than its column: PostgreSQL refuses it, and so does the page.
            too_long = c.post("/staff/cameras", data={
                "csrf_token": csrf_from(page.text), "classroom_id": str(room_id),
                "name": "x" * 150, "source": "http://192.0.2.1/video.mjpg"})
            assert too_long.status_code == 400
            assert "La demande n&#39;est pas valable." in too_long.text
    finally:
        engine.dispose()
