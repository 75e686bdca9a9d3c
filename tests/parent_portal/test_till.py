"""The till screen and card enrolment: who may see them, the live verdicts, and linking a
new card to a pupil from an office tap."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from starlette.testclient import TestClient

from cardpay import cards
from cardpay.models import Card, CardKind, CardStatus, Tap
from cardpay.sun import Keyring
from parent_portal.app import create_app
from school.devices import add_device
from school.models import AuditEvent, Device, DeviceKind, Role
from school.people import grant_role
from school.settings import Settings
from tests import factories
from tests.cardpay.cardsim import card_tap
from tests.cardpay.reader.stack import LiveServer, read_events, signed_in_http
from tests.conftest import FakeClock
from tests.factories import SmallSchool
from tests.parent_portal.conftest import csrf_from, signed_in

SECURE_UID = bytes.fromhex("04C0FFEE123456")


@pytest.fixture
def tills(session: Session, small_school: SmallSchool) -> tuple[Device, str, Device, str]:
    """The school's till and office reader, each with its token."""
    till, till_token = add_device(
        session=session, school=small_school.school, kind=DeviceKind.TILL, name="Cantine"
    )
    office, office_token = add_device(
        session=session, school=small_school.school, kind=DeviceKind.TILL, name="Bureau"
    )
    session.commit()
    return till, till_token, office, office_token


def post_tap(client: TestClient, token: str, clock: FakeClock, **card: str) -> dict[str, object]:
    response = client.post(
        "/api/till/taps",
        json={"tap_id": str(uuid.uuid4()), "read_at": clock.now.isoformat(), "card": card},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_the_till_screen_is_for_the_schools_cashiers_office_and_admins(
    client: TestClient,
    session: Session,
    small_school: SmallSchool,
    tills: tuple[Device, str, Device, str],
) -> None:
    till = tills[0]
    signed_in(client, "cashier@example.org")
    page = client.get(f"/till/{till.id}")
    assert page.status_code == 200
    assert f'data-events="/till/{till.id}/events?after=0"' in page.text
    assert '<script src="/static/till.js" defer></script>' in page.text
    assert "Cantine" in client.get("/till").text
    client.post("/logout", data={"csrf_token": csrf_from(page.text)})

    signed_in(client, "teacher@example.org")
    assert client.get(f"/till/{till.id}").status_code == 404
    assert client.get(f"/till/{till.id}/events").status_code == 404
    session.rollback()  # end the test's read transaction: see what the app wrote
    denied = session.exec(select(AuditEvent).where(AuditEvent.action == "access.denied")).all()
    assert [e.detail["page"] for e in denied] == ["till", "till"]


def test_another_schools_cashier_cannot_watch_this_till(
    client: TestClient, session: Session, tills: tuple[Device, str, Device, str]
) -> None:
    other = factories.school(session, slug="autre")
    stranger = factories.user(session, "caisse@autre.example")
    grant_role(session=session, user=stranger, school=other, role=Role.CASHIER)
    session.commit()
    signed_in(client, "caisse@autre.example")
    assert client.get(f"/till/{tills[0].id}").status_code == 404


@pytest.fixture
def live(settings: Settings, engine: Engine, clock: FakeClock) -> Iterator[LiveServer]:
    server = LiveServer(create_app(settings, engine, clock=clock))
    server.start()
    yield server
    server.stop()


def test_verdicts_stream_to_the_till_screen_and_resume_after_a_reconnect(
    live: LiveServer,
    client: TestClient,
    session: Session,
    small_school: SmallSchool,
    tills: tuple[Device, str, Device, str],
    clock: FakeClock,
) -> None:
    till, token, _office, office_token = tills
    cards.issue_card(
        session=session, pupil=small_school.pupils[0], uid="A1B2C3D4", kind=CardKind.UID
    )
    cashier = signed_in_http(live.url, "cashier@example.org")
    with cashier.stream("GET", f"/till/{till.id}/events?after=0") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        post_tap(client, office_token, clock, uid="A1B2C3D5")  # another till: not shown
        post_tap(client, token, clock, uid="A1B2C3D4")
        clock.advance(minutes=1)
        post_tap(client, token, clock, uid="DEADBEEF")
        first, second = read_events(stream, 2)
    assert first["pupil"]["name"] == "Léa Martin"  # type: ignore[index]
    assert first["pupil"]["allergies"] == "arachide"  # type: ignore[index]
    assert first["card"] == {"uid_end": "C3D4", "secure": False}
    assert "A1B2C3D4" not in str(first)
    assert (first["accepted"], first["reason"]) == (False, "insufficient_funds")
    assert (second["reason"], second["pupil"]) == ("unknown_card", None)
    headers = {"Last-Event-ID": str(first["id"])}
    with cashier.stream("GET", f"/till/{till.id}/events", headers=headers) as stream:
        [again] = read_events(stream, 1)
    assert again["id"] == second["id"]
    cashier.close()


def test_an_unknown_secure_card_tapped_at_the_office_is_enrolled_as_ntag424(
    client: TestClient,
    session: Session,
    small_school: SmallSchool,
    settings: Settings,
    tills: tuple[Device, str, Device, str],
    clock: FakeClock,
) -> None:
    keyring = Keyring(settings.effective_card_master_key())
    sun = card_tap(keyring.meta_read, keyring.file_read(SECURE_UID), SECURE_UID, 5)
    url = f"https://x/s?picc_data={sun.picc_data.hex()}&cmac={sun.cmac.hex()}"
    office, office_token = tills[2], tills[3]
    verdict = post_tap(client, office_token, clock, uid=SECURE_UID.hex(), sun_url=url)
    assert verdict["reason"] == "unknown_card"
    hugo = small_school.pupils[1]
    signed_in(client, "office@example.org")
    page = client.get(f"/staff/cards/enrol?pupil={hugo.id}&device={office.id}")
    assert page.status_code == 200
    assert "Hugo Bernard" in page.text
    assert f"/till/{office.id}/events" in page.text
    session.rollback()
    tap = session.exec(select(Tap)).one()
    assert tap.sun_verified is True
    done = client.post(
        "/staff/cards/enrol",
        data={
            "csrf_token": csrf_from(page.text),
            "pupil_id": str(hugo.id),
            "tap_row": str(tap.id),
        },
    )
    assert done.status_code == 200, done.text
    session.rollback()
    card = session.exec(select(Card).where(Card.pupil_id == hugo.id)).one()
    assert (card.uid, card.kind, card.status) == (
        SECURE_UID.hex().upper(),
        CardKind.NTAG424,
        CardStatus.ACTIVE,
    )
    issued = session.exec(select(AuditEvent).where(AuditEvent.action == "card.issue")).one()
    assert issued.actor_user_id == small_school.office.id


def test_a_uid_card_is_enrolled_with_the_copy_warning_and_stale_taps_are_refused(
    client: TestClient,
    session: Session,
    small_school: SmallSchool,
    tills: tuple[Device, str, Device, str],
    clock: FakeClock,
) -> None:
    office_token = tills[3]
    post_tap(client, office_token, clock, uid="0A0B0C0D")
    session.rollback()
    tap = session.exec(select(Tap)).one()
    signed_in(client, "office@example.org")
    page = client.get("/staff/cards/enrol")
    form = {
        "csrf_token": csrf_from(page.text),
        "pupil_id": str(small_school.pupils[2].id),
        "tap_row": str(tap.id),
    }
    done = client.post("/staff/cards/enrol", data=form)
    assert done.status_code == 200
    assert "peut être copiée" in done.text
    session.rollback()
    card = session.exec(select(Card).where(Card.uid == "0A0B0C0D")).one()
    assert card.kind is CardKind.UID
    again = client.post(
        "/staff/cards/enrol", data={**form, "pupil_id": str(small_school.pupils[1].id)}
    )
    assert again.status_code == 409  # the tap is not an unknown card any more... nor is the card
    clock.advance(minutes=20)
    post_tap(client, office_token, clock, uid="0E0E0E0E")
    clock.advance(minutes=16)
    session.rollback()
    late = session.exec(select(Tap).order_by(col(Tap.id).desc())).first()
    assert late is not None
    stale = client.post("/staff/cards/enrol", data={**form, "tap_row": str(late.id)})
    assert stale.status_code == 409
    session.rollback()
    assert session.exec(select(Card).where(Card.uid == "0E0E0E0E")).first() is None


def test_enrolling_is_for_the_office(client: TestClient, small_school: SmallSchool) -> None:
    signed_in(client, "cashier@example.org")
    assert client.get("/staff/cards/enrol").status_code == 403


def test_the_feed_sends_nothing_older_than_asked(
    session: Session, engine: Engine, tills: tuple[Device, str, Device, str]
) -> None:
    from parent_portal import tillfeed

    since = tillfeed.day_start("Europe/Paris", FakeClock()())
    assert tillfeed.new_events(engine, tills[0].id or 0, 0, since) == []
    assert tillfeed.last_tap_id(session, tills[0].id or 0) == 0
    assert timedelta(seconds=tillfeed.STREAM_SECONDS) > timedelta(minutes=1)


def test_a_cashier_replays_today_only(
    live: LiveServer, client: TestClient, session: Session, small_school: SmallSchool,
    tills: tuple[Device, str, Device, str], clock: FakeClock,
) -> None:
    """`after=0` once replayed the till's whole history (names, allergies, balances)."""
    till, token, _office, _ = tills
    cards.issue_card(session=session, pupil=small_school.pupils[0], uid="A1B2C3D4",
                     kind=CardKind.UID)
    session.commit()
    clock.advance(days=-1)
    post_tap(client, token, clock, uid="A1B2C3D4")  # yesterday: Léa
    clock.advance(days=1, hours=-11, minutes=-15)  # 00:15 today in Paris: 23:15 UTC
    post_tap(client, token, clock, uid="DEADBEEF")  # today, an unknown card
    clock.advance(hours=11, minutes=15)
    cashier = signed_in_http(live.url, "cashier@example.org")
    with cashier.stream("GET", f"/till/{till.id}/events?after=0") as stream:
        post_tap(client, token, clock, uid="A1B2C3D4")
        first, second = read_events(stream, 2)
    cashier.close()
    assert (first["reason"], first["pupil"]) == ("unknown_card", None)
    assert second["pupil"]["name"] == "Léa Martin"  # type: ignore[index]
