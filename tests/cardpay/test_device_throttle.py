"""Bad device tokens on the till API are throttled per address, in the database, and a
valid till is never held up by them."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from starlette.testclient import TestClient

from parent_portal.app import create_app
from school.devices import add_device
from school.models import DeviceAuthFailure, DeviceKind
from school.settings import Settings
from tests.conftest import FakeClock
from tests.factories import SmallSchool

LIMIT = 5


def failures(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(DeviceAuthFailure)).one())


def portal(settings: Settings, engine: Engine, clock: FakeClock) -> FastAPI:
    return create_app(settings.model_copy(update={"device_max_failures_per_ip": LIMIT}),
                      engine, clock=clock)


def test_bad_tokens_get_429_after_the_limit_while_a_valid_till_goes_on(
    settings: Settings, engine: Engine, session: Session, small_school: SmallSchool,
    clock: FakeClock,
) -> None:
    _, token = add_device(session=session, school=small_school.school, kind=DeviceKind.TILL,
                          name="Cantine")
    session.commit()
    client = TestClient(portal(settings, engine, clock))
    bad = {"Authorization": "Bearer not-a-token"}
    statuses = [client.get("/api/till/snapshot", headers=bad).status_code
                for _ in range(LIMIT)]
    assert statuses == [401] * LIMIT
    refused = client.get("/api/till/snapshot", headers=bad)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 15 * 60
    # No header at all counts as a bad token too, and is throttled the same way.
    assert client.post("/api/till/taps", json={}).status_code == 429
    # The same address with the right token is served at once.
    good = client.get("/api/till/snapshot", headers={"Authorization": f"Bearer {token}"})
    assert good.status_code == 200
    assert failures(engine) == LIMIT  # refused requests while locked are not even counted

    clock.advance(minutes=16)
    assert client.get("/api/till/snapshot", headers=bad).status_code == 401
    assert failures(engine) == 1  # the old ones were forgotten


def test_valid_tokens_read_and_write_nothing_of_the_throttle(
    settings: Settings, engine: Engine, session: Session, small_school: SmallSchool,
    clock: FakeClock,
) -> None:
    _, token = add_device(session=session, school=small_school.school, kind=DeviceKind.TILL,
                          name="Cantine")
    session.commit()
    client = TestClient(portal(settings, engine, clock))
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        for _ in range(LIMIT + 2):
            response = client.get("/api/till/snapshot",
                                  headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "device_auth_failure" in s]
    assert failures(engine) == 0


def test_the_limit_is_per_address(
    settings: Settings, engine: Engine, small_school: SmallSchool, clock: FakeClock,
) -> None:
    app = portal(settings, engine, clock)
    first = TestClient(app, client=("192.0.2.10", 50000))
    second = TestClient(app, client=("192.0.2.11", 50000))
    for _ in range(LIMIT):
        first.get("/api/till/snapshot", headers={"Authorization": "Bearer x"})
    assert first.get("/api/till/snapshot").status_code == 429
    assert second.get("/api/till/snapshot").status_code == 401
