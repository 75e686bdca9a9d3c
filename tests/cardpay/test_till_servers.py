"""Two server processes on one PostgreSQL, as two machines of a town: the same taps sent
to both at once are charged once, and the books add up (issue 16)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from datetime import time as dt_time
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, func, select

from cardpay import cards
from cardpay.accounts import pupil_account, school_account
from cardpay.integrity import check_integrity
from cardpay.ledger import balance_of, post
from cardpay.models import (
    AccountKind,
    CanteenSettings,
    CardKind,
    LedgerTransaction,
    TransactionKind,
)
from school.db import make_engine
from school.devices import add_device
from school.migrate import upgrade
from school.models import DeviceKind, Pupil
from tests import factories

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
PRICE, START, PUPILS, TAPS = 100, 100_000, 3, 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed(url: str) -> tuple[list[str], list[str]]:
    """A canteen open at every hour of every day (the servers read the real clock), three
    pupils with money; two tills' tokens and the cards."""
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as session:
        school = factories.school(session)
        room = factories.classroom(session, school, "CP")
        session.add(CanteenSettings(
            school_id=school.id, default_price_cents=PRICE, open_weekdays="0123456",
            service_start=dt_time(0, 0), service_end=dt_time(23, 59, 59),
            one_meal_per_day=False, retap_window_seconds=0))
        cash = school_account(session=session, school_id=school.id or 0,
                              kind=AccountKind.CASH_DRAWER)
        uids = []
        for i in range(PUPILS):
            pupil = factories.pupil(session, room, f"P{i}", "Test")
            uid = f"B1B2C3{i:02X}"
            cards.issue_card(session=session, pupil=pupil, uid=uid, kind=CardKind.UID)
            post(session=session, school_id=school.id or 0, kind=TransactionKind.TOPUP,
                 client_id=f"topup-{i}",
                 legs=[(pupil_account(session=session, pupil=pupil), START), (cash, -START)])
            uids.append(uid)
        tokens = [add_device(session=session, school=school, kind=DeviceKind.TILL,
                             name=f"till-{n}")[1] for n in range(2)]
        session.commit()
    engine.dispose()
    return tokens, uids


@pytest.fixture
def servers(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """Two `moulin.asgi` server processes on their own ports; their base URLs."""
    tokens, uids = _seed(pg_url)
    env = {**os.environ, "MOULIN_DATABASE_URL": pg_url, "MOULIN_DATA_DIR": str(tmp_path),
           "MOULIN_ENVIRONMENT": "development", "PYTHONPATH": str(ROOT)}
    ports = [_free_port(), _free_port()]
    procs = [subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "moulin.asgi:app", "--factory", "--port", str(port),
         "--log-level", "warning", "--no-access-log"], env=env, cwd=ROOT) for port in ports]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base in bases:
            _wait_for(base)
        yield pg_url, bases, [*tokens, *uids]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def _wait_for(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"the server at {base} did not start")


def test_taps_sent_to_two_servers_at_once_are_charged_once(
    servers: tuple[str, list[str], list[str]]
) -> None:
    url, bases, rest = servers
    tokens, uids = rest[:2], rest[2:]
    taps = [(str(uuid.uuid4()), uids[n % PUPILS], tokens[n % 2]) for n in range(TAPS)]

    def send(base: str, tap: tuple[str, str, str]) -> dict[str, object]:
        tap_id, uid, token = tap
        answer = httpx.post(f"{base}/api/till/taps", timeout=30,
                            headers={"Authorization": f"Bearer {token}"},
                            json={"tap_id": tap_id, "card": {"uid": uid},
                                  # the servers check it against their own clock
                                  "read_at": datetime.now(UTC).isoformat()})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    # Every tap goes to both servers at the same moment (a till retrying through the
    # other server), several taps at a time, every pupil's taps racing each other.
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda pair: send(*pair),
                                [(base, tap) for tap in taps for base in bases]))
    for first, second in zip(answers[::2], answers[1::2], strict=True):
        assert (first["accepted"], second["accepted"]) == (True, True)
        assert first["balance_cents"] == second["balance_cents"]  # the same verdict

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            assert check_integrity(session) == []
            meals = session.exec(select(func.count()).select_from(LedgerTransaction)
                                 .where(LedgerTransaction.kind == TransactionKind.MEAL)).one()
            assert meals == TAPS  # not 2 x TAPS: no tap charged twice
            for uid in uids:
                card = cards.find_by_uid(session, uid)
                assert card is not None
                account = pupil_account(session=session,
                                        pupil=session.get_one(Pupil, card.pupil_id))
                eaten = sum(1 for _, u, _ in taps if u == uid)
                assert account.balance_cents == START - PRICE * eaten
            revenue = school_account(session=session, school_id=account.school_id,
                                     kind=AccountKind.MEAL_REVENUE)
            assert balance_of(session, revenue) == PRICE * TAPS
    finally:
        engine.dispose()
