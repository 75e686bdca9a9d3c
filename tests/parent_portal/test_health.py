"""The staff health page and the devices' own reports: a reader daemon tells the server
how many taps wait in its journal, and staff and Prometheus both see it."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

from cardpay.reader.daemon import ReaderDaemon
from cardpay.reader.journal import Journal
from hardware.readers.base import CardKind, CardRead
from school.devices import add_device
from school.models import DeviceKind, Role
from school.people import grant_role
from school.settings import Settings
from tests import factories
from tests.conftest import FakeClock
from tests.factories import SmallSchool
from tests.live import serving
from tests.parent_portal.conftest import signed_in

TOKEN = "m" * 40
UID = bytes.fromhex("04A1B2C3D4E5F6")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(environment="test", data_dir=tmp_path / "var", secret_key="t" * 40,
                    database_url=f"sqlite:///{tmp_path / 'moulin.db'}", metrics_token=TOKEN)


@pytest.fixture
def till_token(session: Session, small_school: SmallSchool) -> str:
    _, token = add_device(session=session, school=small_school.school, kind=DeviceKind.TILL,
                          name="Till 1")
    session.commit()
    return token


class QuietReader:
    """A reader no card is ever put on (the daemon's taps here are handled directly)."""

    name = "quiet"

    def __init__(self) -> None:
        self.shown: list[bool] = []

    def wait_for_card(self, timeout: float) -> CardRead | None:
        time.sleep(min(timeout, 0.01))
        return None

    def feedback(self, accepted: bool) -> None:
        self.shown.append(accepted)

    def close(self) -> None:
        pass


@pytest.fixture
def daemon(app: FastAPI, till_token: str, clock: FakeClock,
           tmp_path: Path) -> Iterator[ReaderDaemon]:
    """A reader daemon talking to the app over real HTTP, on the app's clock."""
    journal = Journal(tmp_path / "till" / "journal.db")
    with serving(app) as url:
        daemon = ReaderDaemon(reader=QuietReader(), journal=journal, server=url,
                              token=till_token, snapshot_path=tmp_path / "till" / "snapshot.json",
                              clock=clock)
        yield daemon
        daemon.uplink.close()
        daemon._snapshot_client.close()
    journal.close()


def cells(page: str, css: str) -> list[str]:
    """The text of each `<td class="… css …">` on the page, tags removed."""
    found = re.findall(rf'<td class="[^"]*\b{css}\b[^"]*">(.*?)</td>', page, re.DOTALL)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in found]


def metric(client: TestClient, metric_name: str, /, **labels: str) -> float | None:
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric_name and all(
                    sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_the_queue_a_daemon_reports_shows_on_the_page_and_in_metrics(
    client: TestClient, daemon: ReaderDaemon, clock: FakeClock,
) -> None:
    signed_in(client, "cashier@example.org")
    page = client.get("/staff/health?lang=en").text
    assert cells(page, "contact") == ["Never seen"]
    assert cells(page, "queue") == ["—"]
    # Two taps read while the server could not be reached wait in the journal.
    for uid in ("0BADCAFE", "0BADCAFF"):
        daemon._journal.record({"uid": uid, "kind": "unknown"}, clock())
    assert daemon.refresh_snapshot()
    page = client.get("/staff/health?lang=en").text
    # Contact and times in the school's zone: 10:30 UTC is 11:30 in Paris.
    assert cells(page, "contact") == ["Live · 24/11/2026 11:30:00"]
    assert cells(page, "queue") == ["2"]
    assert cells(page, "sync") == ["—"]  # it had never heard from the server
    assert metric(client, "moulin_till_queue_length", name="Till 1") == 2
    assert metric(client, "moulin_till_last_sync_timestamp_seconds", name="Till 1") is None

    clock.advance(seconds=20)
    assert daemon.uplink.replay(timeout=5) == 2
    assert daemon.refresh_snapshot()
    page = client.get("/staff/health?lang=en").text
    assert cells(page, "queue") == ["0"]
    assert cells(page, "sync") == ["24/11/2026 11:30:20"]
    assert metric(client, "moulin_till_queue_length", name="Till 1") == 0
    assert metric(client, "moulin_till_last_sync_timestamp_seconds",
                  name="Till 1") == clock().timestamp()
    assert metric(client, "moulin_device_up", name="Till 1") == 1

    # Then the till falls silent.
    clock.advance(minutes=3)
    page = client.get("/staff/health?lang=en").text
    assert cells(page, "contact") == ["Not seen since 24/11/2026 11:30:20"]
    assert '<strong class="alert">Not seen since' in page
    assert metric(client, "moulin_device_up", name="Till 1") == 0


def test_a_tap_through_the_daemon_logs_no_card_uid(
    daemon: ReaderDaemon, caplog: pytest.LogCaptureFixture, session: Session,
    small_school: SmallSchool,
) -> None:
    from cardpay import cards
    from cardpay.models import CardKind as StoredKind

    cards.issue_card(session=session, pupil=small_school.pupils[0], uid=UID.hex().upper(),
                     kind=StoredKind.UID)
    session.commit()
    caplog.set_level(logging.DEBUG)
    verdict = daemon.handle(CardRead(uid=UID, kind=CardKind.MIFARE_CLASSIC_1K, reader="quiet"))
    assert verdict["reason"] == "insufficient_funds"  # answered by the server, online
    lines = [record.getMessage() for record in caplog.records]
    assert any("card 04…F6/7" in line and "online" in line for line in lines), lines
    assert any(line.startswith("tap ") and "refused (insufficient_funds)" in line
               for line in lines), lines
    for line in lines:
        assert UID.hex().upper() not in line.upper()


@pytest.mark.parametrize("email", ["teacher@example.org", "cashier@example.org",
                                   "office@example.org", "admin@example.org"])
def test_every_staff_role_sees_its_schools_devices(
    client: TestClient, session: Session, small_school: SmallSchool, till_token: str,
    email: str,
) -> None:
    other = factories.school(session, slug="autre", name="École de l'Autre Rive")
    add_device(session=session, school=other, kind=DeviceKind.TILL, name="Caisse d'en face")
    add_device(session=session, school=small_school.school, kind=DeviceKind.CAMERA_NODE,
               name="Node A")
    session.commit()
    signed_in(client, email)
    page = client.get("/staff/health")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "Till 1" in page.text
    assert "Node A" in page.text
    assert "en face" not in page.text
    assert "Autre Rive" not in page.text


def test_parents_and_strangers_do_not(
    client: TestClient, session: Session, small_school: SmallSchool, till_token: str,
) -> None:
    assert client.get("/staff/health").status_code == 303  # to the sign-in page
    signed_in(client, "parent@example.org")
    response = client.get("/staff/health")
    assert response.status_code == 403
    assert "Till 1" not in response.text


def test_staff_elsewhere_see_only_their_own_school(
    client: TestClient, session: Session, small_school: SmallSchool, till_token: str,
) -> None:
    other = factories.school(session, slug="autre", name="École de l'Autre Rive")
    add_device(session=session, school=other, kind=DeviceKind.TILL, name="Caisse d'en face")
    grant_role(session=session, user=factories.user(session, "far@example.org"), school=other,
               role=Role.CASHIER)
    session.commit()
    signed_in(client, "far@example.org")
    page = client.get("/staff/health").text
    assert "Caisse d" in page
    assert "Till 1" not in page


def test_a_device_never_heard_from_and_one_long_silent(
    client: TestClient, session: Session, small_school: SmallSchool, clock: FakeClock,
    engine: Engine,
) -> None:
    device, _ = add_device(session=session, school=small_school.school, kind=DeviceKind.TILL,
                           name="Old till")
    device.last_seen_at = clock() - timedelta(hours=2)
    session.add(device)
    session.commit()
    signed_in(client, "office@example.org")
    page = client.get("/staff/health").text  # French by default
    assert cells(page, "contact") == ["Pas de nouvelles depuis le 24/11/2026 09:30:00"]


@pytest.mark.parametrize(("email", "named"), [("office@example.org", True),
                                              ("admin@example.org", True),
                                              ("cashier@example.org", False),
                                              ("teacher@example.org", False)])
def test_a_tap_the_till_and_server_disagreed_on_is_listed_with_what_was_done(
    app: FastAPI, client: TestClient, session: Session, small_school: SmallSchool,
    till_token: str, clock: FakeClock, email: str, named: bool,
) -> None:
    """The server charged a meal whose answer came too late; the till had refused alone.
    The charge is reversed, and staff see that it happened; office and admin see who and
    how much."""
    import uuid

    from cardpay import cards
    from cardpay.accounts import pupil_account, school_account
    from cardpay.ledger import post
    from cardpay.models import AccountKind, CardKind, TransactionKind
    from cardpay.till import TapRequest
    from school.devices import device_for_token

    lea = small_school.pupils[0]
    cards.issue_card(session=session, pupil=lea, uid="A1B2C3D4", kind=CardKind.UID)
    cash = school_account(session=session, school_id=small_school.school.id or 0,
                          kind=AccountKind.CASH_DRAWER)
    post(session=session, school_id=small_school.school.id or 0, kind=TransactionKind.TOPUP,
         client_id="t", legs=[(pupil_account(session=session, pupil=lea), 1000), (cash, -1000)])
    session.commit()
    device = device_for_token(session, till_token)
    assert device is not None
    tap_id = str(uuid.uuid4())
    till = app.state.till
    for offline in (None, False):  # the late 'accepted', then the journal's 'refused'
        till.tap(device, TapRequest(tap_id=tap_id, read_at=clock(), uid="A1B2C3D4",
                                    offline_accepted=offline))
    signed_in(client, email)
    page = client.get("/staff/health").text
    assert ("Léa Martin" in page) is named
    if named:
        assert 'data-kind="charge_reversed"' in page
        assert "débit annulé" in page
        assert "3,50" in page
    else:
        assert "1 passage(s) en désaccord" in page
