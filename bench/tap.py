"""How long a pupil waits at the till: for a stream of taps, the time from the first APDU
the virtual card receives to the LED/buzzer command reaching it, through pcscd, the
reader daemon (journal fsync), HTTP, the SUN check and the ledger commit (SQLite,
synchronous=FULL). pcscd only notices a vpcd card every 400 ms, so the clock starts at
the card's first APDU, and both ends are read on the card's own clock.

    python bench/tap.py [--card ntag424|classic] [--taps N] [--quick]

Prints one JSON line. `floor_p50_ms` is a bare UID read answered at once by a reader
loop in this process, through the same pcscd: what any till pays before doing anything.
Needs pcscd and the vsmartcard-vpcd driver, and no other pcscd running.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import time as day_time
from pathlib import Path

import httpx
from smartcard import scard
from sqlmodel import Session, col, func, select

from cardpay import cards
from cardpay.accounts import pupil_account, school_account
from cardpay.ledger import post
from cardpay.models import (
    AccountKind,
    CanteenSettings,
    CardKind,
    LedgerTransaction,
    TransactionKind,
)
from cardpay.reader.status import read_status
from cardpay.sun import Keyring
from firmware_mocks.cards import Kind
from firmware_mocks.vpcd_card import VirtualCard
from hardware.readers import open_reader
from moulin.vpcd import READER, PrivatePcscd
from school.db import make_engine
from school.devices import add_device
from school.migrate import upgrade
from school.models import Classroom, DeviceKind, Pupil, School

MASTER_KEY = os.urandom(32)
CARDS = 8
ROOT = Path(__file__).resolve().parents[1]


def seed(db_url: str, kind: Kind) -> tuple[str, list[bytes]]:
    """A school serving all day, meals charged on every tap, CARDS pupils with money."""
    engine = make_engine(db_url)
    upgrade(engine)
    uids = []
    with Session(engine) as session:
        school = School(slug="bench", name="Bench")
        session.add(school)
        session.flush()
        assert school.id is not None
        room = Classroom(school_id=school.id, name="CM2")
        session.add(room)
        session.add(
            CanteenSettings(
                school_id=school.id,
                open_weekdays="0123456",
                service_start=day_time(0, 0),
                service_end=day_time(23, 59, 59),
                one_meal_per_day=False,
                retap_window_seconds=0,
            )
        )
        session.flush()
        _, token = add_device(session=session, school=school, kind=DeviceKind.TILL, name="b")
        cash = school_account(session=session, school_id=school.id, kind=AccountKind.CASH_DRAWER)
        for i in range(CARDS):
            pupil = Pupil(
                school_id=school.id,
                classroom_id=room.id,
                external_ref=f"B{i}",
                first_name=f"P{i}",
                last_name="Bench",
            )
            session.add(pupil)
            session.flush()
            uid = (
                bytes([0x04, 0xBE, 0x0C, 0x00, i, 0x11, 0x80])
                if kind is Kind.NTAG424_DNA
                else bytes([0xB0, 0x0C, i, 0x11])
            )
            secure = kind is Kind.NTAG424_DNA
            cards.issue_card(
                session=session,
                pupil=pupil,
                uid=uid,
                kind=CardKind.NTAG424 if secure else CardKind.UID,
            )
            post(
                session=session,
                school_id=school.id,
                kind=TransactionKind.TOPUP,
                client_id=f"topup-{uuid.uuid4()}",
                legs=[(pupil_account(session=session, pupil=pupil), 10**7), (cash, -(10**7))],
            )
            uids.append(uid)
        session.commit()
    engine.dispose()
    return token, uids


def wait_until_empty(timeout: float = 5.0) -> None:
    """Until pcscd has seen the last card leave (it looks every 400 ms)."""
    _, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    try:
        state, deadline = scard.SCARD_STATE_UNAWARE, time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            _, states = scard.SCardGetStatusChange(
                context, int(remaining * 1000), [(READER, state)]
            )
            state = states[0][1] & ~scard.SCARD_STATE_CHANGED
            if state & scard.SCARD_STATE_EMPTY:
                return
        raise RuntimeError("a card stayed on the reader")
    finally:
        scard.SCardReleaseContext(context)


def tap_latency(card: VirtualCard) -> tuple[float, bool]:
    """One tap: milliseconds from the first APDU to the feedback command, and green?"""
    wait_until_empty()
    seen = len(card.feedback)
    result = card.tap(5000, until_feedback=True)
    if len(card.feedback) == seen or result.first_apdu_at is None:
        raise RuntimeError("the tap got no feedback within 5 s")
    last = card.feedback[-1]
    return (last.at - result.first_apdu_at) * 1000, bool(last.green)


def floor(port: int, taps: int) -> list[float]:
    """A bare UID read, answered at once by our PC/SC driver in this process."""
    stop = threading.Event()

    def serve() -> None:
        reader = open_reader("pcsc:Virtual PCD")
        while not stop.is_set():
            if reader.wait_for_card(0.5) is not None:
                reader.feedback(True)
        reader.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    card = VirtualCard(Kind.MIFARE_CLASSIC_1K, bytes.fromhex("F1005EED"), port=port)
    try:
        return [tap_latency(card)[0] for _ in range(taps)]
    finally:
        stop.set()
        thread.join(5)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(db_url: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "MOULIN_DATABASE_URL": db_url,
        "MOULIN_ENVIRONMENT": "test",
        "MOULIN_DATA_DIR": str(work),
        "MOULIN_CARD_MASTER_KEY": MASTER_KEY.hex(),
        "MOULIN_SECRET_KEY": "b" * 48,
        "PYTHONPATH": str(ROOT),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "moulin.asgi:app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=work,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError("the server did not start")
        time.sleep(0.2)


def start_daemon(url: str, token: str, work: Path) -> subprocess.Popen[bytes]:
    token_file = work / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    journal = work / "reader" / "journal.db"
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "moulin.cli",
            "reader",
            "--device",
            "pcsc:Virtual PCD",
            "--server",
            url,
            "--token",
            str(token_file),
            "--journal",
            str(journal),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=(work / "daemon.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while not _ready(journal):
        if time.monotonic() > deadline or daemon.poll() is not None:
            # Never leave it running: a stray daemon would go on reading the cards of
            # whatever pcscd runs next.
            daemon.kill()
            daemon.wait(10)
            raise RuntimeError(f"the daemon did not start: see {work / 'daemon.log'}")
        time.sleep(0.2)
    return daemon


def _ready(journal: Path) -> bool:
    try:
        return journal.exists() and read_status(journal).snapshot_at is not None
    except sqlite3.Error:  # the daemon is still creating its journal's tables
        return False


def meals(db_url: str) -> int:
    engine = make_engine(db_url)
    with Session(engine) as session:
        count = session.exec(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(col(LedgerTransaction.kind) == TransactionKind.MEAL)
        ).one()
    engine.dispose()
    return int(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--card", choices=["ntag424", "classic"], default="ntag424")
    parser.add_argument("--taps", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="40 taps: under a minute")
    args = parser.parse_args()
    taps = 40 if args.quick else args.taps
    kind = Kind.NTAG424_DNA if args.card == "ntag424" else Kind.MIFARE_CLASSIC_1K
    work = Path(tempfile.mkdtemp(prefix="moulin-bench-"))
    db_url = f"sqlite:///{work / 'moulin.db'}"
    token, uids = seed(db_url, kind)
    keyring = Keyring(MASTER_KEY)
    pcscd = PrivatePcscd()
    pcscd.start()
    server = daemon = None
    try:
        floor_ms = floor(pcscd.port, max(10, taps // 4))
        server, url = start_server(db_url, work)
        daemon = start_daemon(url, token, work)
        virtual = [
            VirtualCard(
                kind,
                uid,
                port=pcscd.port,
                meta_key=keyring.meta_read,
                file_key=keyring.file_read(uid),
            )
            for uid in uids
        ]
        tap_latency(virtual[0])  # warm-up: first connections, first queries
        results = [tap_latency(virtual[i % len(virtual)]) for i in range(taps)]
    finally:
        for process in (daemon, server):
            if process is not None:
                process.terminate()
                process.wait(20)
        pcscd.stop()
    latencies = [ms for ms, _ in results]
    print(
        json.dumps(
            {
                "card": args.card,
                "taps": taps,
                "accepted": sum(1 for _, green in results if green),
                "charged": meals(db_url) - 1,  # less the warm-up tap
                "p50_ms": round(statistics.median(latencies), 2),
                "p90_ms": round(percentile(latencies, 90), 2),
                "p99_ms": round(percentile(latencies, 99), 2),
                "max_ms": round(max(latencies), 2),
                "floor_p50_ms": round(statistics.median(floor_ms), 2),
                "floor_p99_ms": round(percentile(floor_ms, 99), 2),
                "nproc": os.cpu_count(),
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
