"""The whole till stack for integration tests: a canteen open all day with pupils, cards
and money; the real app under uvicorn on a loopback port that can be stopped and started
again; and virtual cards keyed the way the server derives NTAG 424 DNA keys."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import time as clock_time
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select
from starlette.types import ASGIApp

from cardpay import cards
from cardpay.accounts import pupil_account, school_account
from cardpay.ledger import post
from cardpay.models import (
    AccountKind,
    CanteenSettings,
    CardKind,
    LedgerTransaction,
    Tap,
    TransactionKind,
)
from cardpay.sun import Keyring
from firmware_mocks.cards import Kind
from firmware_mocks.vpcd_card import VirtualCard
from school.devices import add_device
from school.models import Device, DeviceKind, Pupil
from tests import factories

MASTER_KEY = bytes(range(32))
KEYRING = Keyring(MASTER_KEY)
PRICE = 350


@dataclass
class Holder:
    """A pupil and the UID of the card they were given."""

    pupil_id: int
    name: str
    uid: bytes
    kind: Kind


@dataclass
class Canteen:
    school_id: int
    device: Device
    token: str
    holders: list[Holder] = field(default_factory=list)

    def card(self, holder: Holder, port: int, **options: object) -> VirtualCard:
        """The virtual card of `holder`, with the keys the server expects."""
        keys = {}
        if holder.kind is Kind.NTAG424_DNA:
            keys = {"meta_key": KEYRING.meta_read, "file_key": KEYRING.file_read(holder.uid)}
        return VirtualCard(holder.kind, holder.uid, port=port, **keys, **options)  # type: ignore[arg-type]


def uid_for(i: int, kind: Kind) -> bytes:
    if kind is Kind.MIFARE_CLASSIC_1K:
        return bytes([0xC0, 0x10, i, 0x5A])
    return bytes([0x04, 0x42, 0x10, i, 0x33, 0x44, 0x80])


def open_canteen(
    session: Session,
    kinds: list[Kind],
    *,
    balance_cents: int = 2000,
    one_meal_per_day: bool = True,
    retap_window_seconds: int = 10,
) -> Canteen:
    """A school whose canteen serves all day, every day, and one pupil per card kind."""
    school = factories.school(session, slug=f"s{uuid.uuid4().hex[:8]}")
    room = factories.classroom(session, school, "CM1")
    assert school.id is not None
    session.add(
        CanteenSettings(
            school_id=school.id,
            default_price_cents=PRICE,
            open_weekdays="0123456",
            service_start=clock_time(0, 0),
            service_end=clock_time(23, 59, 59),
            one_meal_per_day=one_meal_per_day,
            retap_window_seconds=retap_window_seconds,
        )
    )
    device, token = add_device(session=session, school=school, kind=DeviceKind.TILL, name="till")
    canteen = Canteen(school.id, device, token)
    cash = school_account(session=session, school_id=school.id, kind=AccountKind.CASH_DRAWER)
    for i, kind in enumerate(kinds):
        pupil = factories.pupil(
            session, room, f"Élève{i}", "Dupont", allergies="arachide" if i == 0 else ""
        )
        uid = uid_for(i, kind)
        secure = kind is Kind.NTAG424_DNA
        cards.issue_card(
            session=session,
            pupil=pupil,
            uid=uid,
            kind=CardKind.NTAG424 if secure else CardKind.UID,
        )
        if balance_cents:
            post(
                session=session,
                school_id=school.id,
                kind=TransactionKind.TOPUP,
                client_id=f"topup-{uuid.uuid4()}",
                legs=[
                    (pupil_account(session=session, pupil=pupil), balance_cents),
                    (cash, -balance_cents),
                ],
            )
        assert pupil.id is not None
        canteen.holders.append(Holder(pupil.id, pupil.full_name, uid, kind))
    session.commit()
    return canteen


def taps(engine: Engine, device_id: int | None = None) -> list[Tap]:
    with Session(engine) as session:
        query = select(Tap).order_by(col(Tap.id))
        if device_id is not None:
            query = query.where(Tap.device_id == device_id)
        return list(session.exec(query).all())


def meals_charged(engine: Engine, pupil_id: int) -> int:
    """How many meal transactions the ledger holds for the pupil's taps."""
    with Session(engine) as session:
        tap_ids = session.exec(select(Tap.tap_id).where(Tap.pupil_id == pupil_id)).all()
        return int(
            session.exec(
                select(func.count())
                .select_from(LedgerTransaction)
                .where(
                    LedgerTransaction.kind == TransactionKind.MEAL,
                    col(LedgerTransaction.client_id).in_([f"tap:{t}" for t in tap_ids]),
                )
            ).one()
        )


def balance(engine: Engine, pupil_id: int) -> int:
    with Session(engine) as session:
        pupil = session.get(Pupil, pupil_id)
        assert pupil is not None
        return pupil_account(session=session, pupil=pupil).balance_cents


class LiveServer:
    """The app under uvicorn in a thread, on a port kept across stop and start."""

    def __init__(self, app: FastAPI | ASGIApp) -> None:
        self.app = app
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            ws="none",
            lifespan="off",
            http="h11",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive(), "server thread died"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        self._server, self._thread, self._sock = server, thread, sock

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        assert self._thread is not None
        assert self._sock is not None
        self._thread.join(timeout=15)
        self._sock.close()
        self._server = self._thread = self._sock = None


def signed_in_http(base: str, email: str, password: str = factories.PASSWORD) -> httpx.Client:
    """An httpx client signed in to the live server the way a browser does."""
    client = httpx.Client(base_url=base, timeout=10)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token.group(1)}
    )
    assert response.status_code == 303, response.text
    return client


def read_events(response: httpx.Response, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The next `count` verdict events of an open event stream."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    for line in response.iter_lines():
        if line.startswith("data: "):
            events.append(json.loads(line[6:]))
            if len(events) == count:
                return events
        assert time.monotonic() < deadline, f"only {len(events)} events came"
    raise AssertionError("the stream ended early")
