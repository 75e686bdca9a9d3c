"""`moulin demo` end to end: a fresh demo school, served, and a parent signing in."""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import Session, col, func, select

from cardpay.models import Tap
from moulin.demo_data import DEMO_PASSWORD
from school.db import make_engine
from school.models import Classroom, Pupil, Role, RoleGrant, School, User
from school.people import children_of, create_user, grant_role


def _demo_today() -> date:
    """The demo's 'today', as `moulin demo` reckons it (Paris time): the machine's own date
    differs from it for an hour or two every night."""
    return datetime.now(ZoneInfo("Europe/Paris")).date()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The demo's start-up (13 s here at load 7, 90 s not enough at load 25) counts against
# its first test.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("demo")
    data = root / "var" / "demo"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOULIN_")}
    # Its output goes to a file: a pipe nobody reads until the end fills up, and a demo
    # blocked on writing a log line never answers.
    log = root / "demo.log"
    with log.open("w") as out_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moulin.cli", "demo", "--port", str(port),
             "--data-dir", str(data)],
            env=env,
            stdout=out_file,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"moulin demo did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        yield base, data
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    out = log.read_text()
    assert "parent@demo.moulin" in out
    assert f"http://127.0.0.1:{port}/" in out
    assert f"http://127.0.0.1:{port}/till/" in out


def _login(base: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=True, timeout=10)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    resp = client.post(
        "/login",
        data={"email": email, "password": DEMO_PASSWORD, "csrf_token": token.group(1), "next": "/"},
    )
    assert resp.status_code == 200
    return client


def test_demo_school_has_three_classes_of_pupils_and_the_staff(demo: tuple[str, Path]) -> None:
    _, data = demo
    with Session(make_engine(f"sqlite:///{data / 'moulin.db'}")) as session:
        assert len(session.exec(select(Classroom)).all()) == 3
        assert 55 <= len(session.exec(select(Pupil)).all()) <= 65
        staff = {
            (u, r)
            for u, r in session.exec(
                select(User.email, RoleGrant.role).join(RoleGrant, RoleGrant.user_id == User.id)
            )
        }
        assert {
            ("admin@demo.moulin", Role.ADMIN),
            ("cashier@demo.moulin", Role.CASHIER),
            ("office@demo.moulin", Role.OFFICE),
            ("teacher@demo.moulin", Role.TEACHER),
        } <= staff


def test_demo_parent_sees_exactly_their_two_children(demo: tuple[str, Path]) -> None:
    base, data = demo
    with Session(make_engine(f"sqlite:///{data / 'moulin.db'}")) as session:
        parent = session.exec(select(User).where(User.email == "parent@demo.moulin")).one()
        children = children_of(session, parent.id, _demo_today())  # type: ignore[arg-type]
        mine = {p.full_name for p in children}
        rooms = {p.classroom_id for p in children}
        everyone = {p.full_name for p in session.exec(select(Pupil)).all()}
    assert len(mine) == 2
    assert len(rooms) == 2
    client = _login(base, "parent@demo.moulin")
    try:
        page = client.get("/parent").text
    finally:
        client.close()
    shown = {html.unescape(n) for n in re.findall(r'href="/parent/children/\d+">([^<]+)</a>', page)}
    assert shown == mine
    assert mine < everyone


def test_demo_accounts_cards_and_history_add_up(demo: tuple[str, Path]) -> None:
    from cardpay.account_models import Receipt
    from cardpay.ledger import check_integrity
    from cardpay.models import Account, AccountKind, Card, CardKind, CardStatus, LedgerTransaction
    from moulin.demo_money import DEMO_TARIFFS

    _, data = demo
    with Session(make_engine(f"sqlite:///{data / 'moulin.db'}")) as session:
        assert check_integrity(session) == []
        active = session.exec(select(Card).where(Card.status == CardStatus.ACTIVE)).all()
        assert len(active) == len(session.exec(select(Pupil)).all())
        secure = [c.uid for c in active if c.kind is CardKind.NTAG424]
        plain = [c.uid for c in active if c.kind is CardKind.UID]
        assert secure
        assert plain
        assert all(uid.startswith("04") and len(uid) == 14 for uid in secure)
        assert all(len(uid) in (8, 14) for uid in plain)  # Classic 1K, or a virtual NTAG21x
        assert {c.status for c in session.exec(select(Card)).all()} >= {
            CardStatus.LOST, CardStatus.RETIRED}
        kinds = {t.kind.value for t in session.exec(select(LedgerTransaction)).all()}
        assert kinds == {"meal", "topup", "refund", "reversal"}
        numbers = sorted(session.exec(select(Receipt.number)).all())
        assert numbers == list(range(1, len(numbers) + 1))
        balances = [a.balance_cents for a in session.exec(
            select(Account).where(Account.kind == AccountKind.PUPIL_LUNCH)).all()]
        assert len(balances) == len(active)
        assert min(balances) >= 0
        assert sum(b < 500 for b in balances) >= 3  # some families need reminding
        assert {p.tariff_band for p in session.exec(select(Pupil)).all()} <= set(DEMO_TARIFFS)


def test_demo_lunches_are_taps_the_till_decided(demo: tuple[str, Path]) -> None:
    """The history's meals went through the till service as real taps: each meal has its
    tap, secure cards' taps carried a checked SUN message, and no pupil got two meals in a
    school day (the demo once posted meals straight to the ledger, and 35 pupil-days got a
    second one)."""
    from zoneinfo import ZoneInfo

    from cardpay.models import LedgerTransaction, Tap, TransactionKind

    _, data = demo
    with Session(make_engine(f"sqlite:///{data / 'moulin.db'}")) as session:
        meals = session.exec(select(LedgerTransaction.client_id).where(
            LedgerTransaction.kind == TransactionKind.MEAL)).all()
        taps = {t.tap_id: t for t in session.exec(select(Tap)).all()}
        assert len(meals) > 100
        assert all(m.startswith("tap:") and m[4:] in taps for m in meals)
        eaten = [t for t in taps.values() if t.accepted and t.repeat_of_id is None]
        days = [(t.pupil_id, t.read_at.astimezone(ZoneInfo("Europe/Paris")).date())
                for t in eaten]
        assert len(days) == len(set(days)), "a pupil got two meals on one school day"
        assert any(t.sun_verified for t in eaten)


def test_demo_parent_sees_a_balance_and_history(demo: tuple[str, Path]) -> None:
    base, _ = demo
    client = _login(base, "parent@demo.moulin")
    try:
        home = client.get("/parent").text
        child = re.search(r'href="/parent/children/(\d+)"', home)
        assert child is not None
        page = client.get(f"/parent/children/{child.group(1)}/account").text
    finally:
        client.close()
    assert 'id="balance"' in page
    assert "Repas" in page
    assert "Recharge" in page


def test_a_demo_card_tapped_from_the_demo_page_reaches_the_till(demo: tuple[str, Path]) -> None:
    base, data = demo
    engine = make_engine(f"sqlite:///{data / 'moulin.db'}")
    with Session(engine) as session:  # the history's taps came before
        before = session.exec(select(func.max(Tap.id))).one() or 0
    client = _login(base, "cashier@demo.moulin")
    try:
        page = client.get("/demo/tap")
        assert page.status_code == 200
        keys = re.findall(r'name="key" value="([^"]+)"', page.text)
        assert "card-3" in keys  # a UID card: pcscd + vpcd or the nfcpy emulator alike
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        tapped = client.post("/demo/tap", data={"key": "card-3", "csrf_token": token.group(1)})
        assert tapped.status_code == 200
        assert "/till/" in tapped.text
    finally:
        client.close()
    deadline = time.monotonic() + 20
    found: list[Tap] = []
    while not found and time.monotonic() < deadline:
        time.sleep(0.2)
        with Session(engine) as session:
            found = list(session.exec(select(Tap).where(col(Tap.id) > before)).all())
    engine.dispose()
    assert [(t.accepted, t.reason) for t in found] == [(True, "ok")]


def test_another_schools_staff_get_no_demo_taps(demo: tuple[str, Path]) -> None:
    base, data = demo
    engine = make_engine(f"sqlite:///{data / 'moulin.db'}")
    with Session(engine) as session:
        other = School(slug="autre", name="Autre école")
        session.add(other)
        session.flush()
        user = create_user(session=session, email="cashier@autre.example",
                           password=DEMO_PASSWORD)
        grant_role(session=session, user=user, school=other, role=Role.CASHIER)
        session.commit()
    engine.dispose()
    client = _login(base, "cashier@autre.example")
    try:
        assert client.get("/demo/tap").status_code == 404
        page = client.get("/account/sessions")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        refused = client.post("/demo/tap", data={"key": "card-3", "csrf_token": token.group(1)})
        assert refused.status_code == 404
    finally:
        client.close()


def _local_hour() -> int:
    return datetime.now(ZoneInfo("Europe/Paris")).hour


def test_demo_parent_sees_their_childrens_two_rooms_live(demo: tuple[str, Path]) -> None:
    base, data = demo
    with Session(make_engine(f"sqlite:///{data / 'moulin.db'}")) as session:
        parent = session.exec(select(User).where(User.email == "parent@demo.moulin")).one()
        rooms = {p.classroom_id for p in children_of(session, parent.id, _demo_today())}  # type: ignore[arg-type]
        names = {r.name for r in session.exec(select(Classroom)) if r.id in rooms}
    client = _login(base, "parent@demo.moulin")
    try:
        page = client.get("/parent/cameras").text
        shown = {html.unescape(n).strip() for n in re.findall(r"<h2>Classe ([^<(]+)", page)}
        assert shown == names
        urls = re.findall(r'src="(/cameras/\d+/stream\.mjpg\?t=[^"]+)"', page)
        if 7 <= _local_hour() < 20:  # the demo's broadcast hours, every day
            assert len(urls) == 2
            with client.stream("GET", html.unescape(urls[0])) as response:
                assert response.status_code == 200
                body = b""
                for chunk in response.iter_raw():
                    body += chunk
                    if b"X-Frame-Kind: live" in body:
                        break
        else:
            assert urls == []
            assert page.count('data-reason="outside_hours"') == 2
    finally:
        client.close()


def test_demo_teacher_pauses_their_room(demo: tuple[str, Path]) -> None:
    base, _ = demo
    teacher = _login(base, "teacher@demo.moulin")
    try:
        page = teacher.get("/staff/cameras").text
        (camera_id,) = re.findall(r'<tr data-camera="(\d+)">', page)  # CE1 only
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        done = teacher.post(f"/staff/cameras/{camera_id}/pause",
                            data={"csrf_token": token.group(1), "next": "/staff/cameras"})
        assert done.status_code == 200  # followed back to the list
        assert "en pause" in done.text
        teacher.post(f"/staff/cameras/{camera_id}/resume", data={"csrf_token": token.group(1)})
    finally:
        teacher.close()
