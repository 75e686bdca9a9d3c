"""The till API as a reader daemon uses it: a device token, JSON in, a verdict out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from starlette.testclient import TestClient

from cardpay import cards
from cardpay.accounts import pupil_account, school_account
from cardpay.ledger import post
from cardpay.models import AccountKind, CardKind, Tap, TransactionKind
from parent_portal.app import create_app
from school.devices import add_device, device_for_token, revoke_device
from school.models import DeviceKind, School
from school.settings import Settings
from tests.conftest import FakeClock
from tests.factories import SmallSchool

NOON = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
UID = "A1B2C3D4"


@pytest.fixture
def till(
    settings: Settings,
    engine: Engine,
    session: Session,
    small_school: SmallSchool,
    clock: FakeClock,
) -> tuple[TestClient, str, Session]:
    clock.now = NOON
    s = small_school
    cards.issue_card(session=session, pupil=s.pupils[0], uid=UID, kind=CardKind.UID)
    cash = school_account(session=session, school_id=s.school.id or 0, kind=AccountKind.CASH_DRAWER)
    post(
        session=session,
        school_id=s.school.id or 0,
        kind=TransactionKind.TOPUP,
        client_id="t",
        legs=[(pupil_account(session=session, pupil=s.pupils[0]), 1000), (cash, -1000)],
    )
    _, token = add_device(session=session, school=s.school, kind=DeviceKind.TILL, name="till-1")
    session.commit()
    app: FastAPI = create_app(settings, engine, clock=clock)
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {token}"
    return client, token, session


def _tap(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "tap_id": str(uuid.uuid4()),
        "read_at": NOON.isoformat(),
        "card": {"uid": UID},
    }
    body.update(over)
    return body


def _taps(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Tap)).one())


def test_a_tap_gets_a_verdict_once(till: tuple[TestClient, str, Session]) -> None:
    client, _, session = till
    body = _tap()
    first = client.post("/api/till/taps", json=body)
    assert first.status_code == 200
    verdict = first.json()
    assert verdict["accepted"] is True
    assert verdict["pupil"]["name"] == "Léa Martin"
    assert verdict["pupil"]["allergies"] == "arachide"
    assert (verdict["price_cents"], verdict["balance_cents"], verdict["currency"]) == (
        350,
        650,
        "EUR",
    )
    again = client.post("/api/till/taps", json=body)
    assert again.json() == verdict
    assert _taps(session) == 1


def test_a_tap_records_when_the_till_was_last_seen(
    till: tuple[TestClient, str, Session], clock: FakeClock
) -> None:
    client, token, session = till
    assert client.post("/api/till/taps", json=_tap()).status_code == 200
    device = device_for_token(session, token)
    assert device is not None
    session.refresh(device)
    assert device.last_seen_at == clock()


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc"])
def test_without_a_valid_device_token_nothing_happens(
    till: tuple[TestClient, str, Session], header: str | None
) -> None:
    client, _, session = till
    headers = {"Authorization": header} if header else {}
    client.headers.pop("Authorization")
    response = client.post("/api/till/taps", json=_tap(), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert _taps(session) == 0


def test_a_revoked_till_and_a_camera_node_are_refused(
    till: tuple[TestClient, str, Session],
) -> None:
    client, token, session = till
    device = device_for_token(session, token)
    assert device is not None
    revoke_device(session=session, device=device, now=NOON)
    session.commit()
    assert client.post("/api/till/taps", json=_tap()).status_code == 401
    _, node_token = add_device(
        session=session,
        school=session.exec(select(School)).one(),
        kind=DeviceKind.CAMERA_NODE,
        name="cam",
    )
    session.commit()
    response = client.get("/api/till/snapshot", headers={"Authorization": f"Bearer {node_token}"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "bad",
    [
        {"card": {"uid": "not hex!"}},
        {"read_at": "2026-11-24T11:00:00"},  # no time zone
        {"tap_id": "123"},
        {"card": {"uid": UID, "pin": "1234"}},
        {"extra": True},
    ],
)
def test_malformed_taps_are_refused_clearly(
    till: tuple[TestClient, str, Session], bad: dict[str, object]
) -> None:
    client, _, session = till
    response = client.post("/api/till/taps", json=_tap(**bad))
    assert response.status_code == 422
    assert _taps(session) == 0


def test_a_till_with_a_wrong_clock_is_told_so(till: tuple[TestClient, str, Session]) -> None:
    client, _, session = till
    response = client.post(
        "/api/till/taps", json=_tap(read_at=(NOON + timedelta(hours=1)).isoformat())
    )
    assert response.status_code == 422
    assert response.json() == {"detail": "read_at is in the future: check the till's clock"}
    assert _taps(session) == 0


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
@pytest.mark.parametrize("body", [b"\x00\xff garbage", b"", b"[]", b"null", b"{\"tap_id\": 1}"])
def test_garbage_bodies_are_refused(
    till: tuple[TestClient, str, Session], body: bytes, content_type: str | None
) -> None:
    client, _, session = till
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/api/till/taps", content=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"
    assert _taps(session) == 0


def test_the_snapshot_has_what_an_offline_till_needs(
    till: tuple[TestClient, str, Session],
) -> None:
    client, _, _ = till
    client.post("/api/till/taps", json=_tap())
    snap = client.get("/api/till/snapshot").json()
    assert snap["cards"] == [{"uid": UID, "kind": "uid", "status": "active", "pupil_id": 1}]
    lea = next(p for p in snap["pupils"] if p["name"] == "Léa Martin")
    assert (lea["balance_cents"], lea["spent_today_cents"]) == (650, 350)
    assert lea["first_meal_today_at"] == NOON.isoformat()
    assert snap["rules"]["default_price_cents"] == 350
    assert snap["rules"]["timezone"] == "Europe/Paris"
    assert len(snap["pupils"]) == 3


def test_many_tills_and_a_parent_at_once_all_get_answers(
    till: tuple[TestClient, str, Session], settings: Settings, engine: Engine,
    session: Session, small_school: SmallSchool, clock: FakeClock,
) -> None:
    """Tills writing hard while a parent signs in and reads pages: no 'database is
    locked' for anyone (a read upgraded to a write would fail under SQLite)."""
    import re
    import threading

    import httpx

    from tests.factories import PASSWORD
    from tests.live import serving

    tokens = [add_device(session=session, school=small_school.school, kind=DeviceKind.TILL,
                         name=f"till-{n}")[1] for n in range(2, 6)]
    session.commit()
    statuses: list[int] = []

    def till_worker(token: str) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
            statuses.extend(c.post("/api/till/taps", json=_tap()).status_code for _ in range(15))

    def parent_worker() -> None:
        with httpx.Client(base_url=base, follow_redirects=True) as c:
            for _ in range(3):
                form = c.get("/login").text
                token = re.search(r'name="csrf_token" value="([^"]+)"', form)
                assert token is not None
                page = c.post("/login", data={"email": "parent@example.org",
                                              "password": PASSWORD,
                                              "csrf_token": token.group(1)})
                statuses.append(page.status_code)
                statuses.append(c.get("/parent/children/2").status_code)  # not theirs

    with serving(create_app(settings, engine, clock=clock)) as base:
        threads = [threading.Thread(target=till_worker, args=(t,)) for t in tokens]
        threads.append(threading.Thread(target=parent_worker))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert sorted(set(statuses)) == [200, 404]
    assert statuses.count(200) == 4 * 15 + 3


@pytest.mark.parametrize(
    "over",
    [
        {"offline_accepted": "yes"},
        {"offline_accepted": "true"},
        {"offline_accepted": 1},
        {"offline_accepted": 0},
        {"offline_accepted": "null"},
        {"card": {"uid": 0xA1B2C3D4}},
        {"card": {"uid": UID, "sun_url": 5}},
        {"read_at": 1795000000},
        {"tap_id": 12345},
    ],
)
def test_a_loosely_typed_body_is_refused_and_changes_nothing(
    till: tuple[TestClient, str, Session], over: dict[str, object]
) -> None:
    """JSON booleans, integers and strings only: a 'yes' once counted as a meal served
    offline, which skips one-meal-a-day and the overdraft floor."""
    client, _, session = till
    response = client.post("/api/till/taps", json=_tap(**over))
    assert response.status_code == 422, response.text
    assert _taps(session) == 0


@pytest.mark.parametrize("queue", ["+3", " 3", "1_0", "٣", "3.0"])
def test_a_garbled_queue_report_is_ignored(queue: str) -> None:
    from school.device_reports import parse_report

    assert parse_report(queue, None) is None
    assert parse_report("3", None) is not None
