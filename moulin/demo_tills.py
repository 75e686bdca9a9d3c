"""The demo's canteen: cards for a few demo pupils, a till and an office reader, and the
running stack behind `/demo/tap` (a private pcscd with vpcd, or nfcpy's udp emulator when
pcscd cannot run here; a reader daemon; the virtual cards).

Kept apart from `demo_data` (the school, its people) so both can grow independently.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import time as day_time
from pathlib import Path
from types import FrameType

from sqlmodel import Session, col, select

from cardpay import cards
from cardpay.accounts import pupil_account, school_account
from cardpay.ledger import post
from cardpay.models import AccountKind, CanteenSettings, Card, CardKind, TransactionKind
from cardpay.sun import Keyring
from parent_portal.routes.demo import DemoCard
from school.devices import add_device
from school.models import DeviceKind, Pupil, School

logger = logging.getLogger(__name__)

SECURE_CARDS, UID_CARDS = 3, 3
TOP_UP_CENTS = 2000
SEEN_COUNTER = 100  # secure cards were read this often before: a copy replays less


@dataclass(frozen=True)
class DemoHolder:
    key: str
    label: str
    uid: bytes
    secure: bool
    note: str = ""
    counter: int = 0  # NTAG 424: the read counter before the demo's first tap


@dataclass(frozen=True)
class DemoTills:
    till_id: int
    till_token: str
    office_id: int
    office_token: str
    holders: list[DemoHolder]


def _uid(i: int, secure: bool) -> bytes:
    # 7-byte UIDs throughout, so UID cards also work as NTAG215s on nfcpy's emulator.
    return bytes([0x04, 0x5E if secure else 0x1D, 0xD0, 0x00, i, 0x42, 0x80])


def seed_tills(session: Session, school: School) -> DemoTills:
    """Give the demo school its tills and, unless it has cards already, a few cards."""
    assert school.id is not None
    if (
        session.exec(select(CanteenSettings).where(CanteenSettings.school_id == school.id)).first()
        is None
    ):
        # Serve every day, all day: a newcomer tries the demo whenever they like.
        session.add(
            CanteenSettings(
                school_id=school.id,
                prices_by_band={"T1": 80, "T2": 180},
                open_weekdays="0123456",
                service_start=day_time(0, 0),
                service_end=day_time(23, 59, 59),
            )
        )
    till, till_token = add_device(
        session=session, school=school, kind=DeviceKind.TILL, name="Cantine (démo)"
    )
    office, office_token = add_device(
        session=session, school=school, kind=DeviceKind.TILL, name="Secrétariat (démo)"
    )
    session.commit()
    holders = _holders(session, school)
    assert till.id is not None
    assert office.id is not None
    return DemoTills(till.id, till_token, office.id, office_token, holders)


def _holders(session: Session, school: School) -> list[DemoHolder]:
    existing = session.exec(
        select(Card).join(Pupil, col(Pupil.id) == Card.pupil_id).where(Pupil.school_id == school.id)
    ).first()
    if existing is not None:
        logger.info("the demo school has cards already: the tap page offers none")
        return []
    pupils = list(
        session.exec(
            select(Pupil)
            .where(Pupil.school_id == school.id)
            .order_by(col(Pupil.allergies) == "", col(Pupil.id))
        ).all()
    )
    holders = []
    for i, pupil in enumerate(pupils[: SECURE_CARDS + UID_CARDS]):
        secure = i < SECURE_CARDS
        uid = _uid(i, secure)
        card = cards.issue_card(
            session=session, pupil=pupil, uid=uid, kind=CardKind.NTAG424 if secure else CardKind.UID
        )
        if secure:
            card.last_sun_counter = SEEN_COUNTER
            session.add(card)
        _top_up(session, school, pupil)
        kind = "NTAG 424 DNA" if secure else "UID"
        holders.append(
            DemoHolder(
                f"card-{i}",
                f"{pupil.full_name} — {kind}",
                uid,
                secure,
                counter=SEEN_COUNTER if secure else 0,
            )
        )
    first, last = holders[0], pupils[SECURE_CARDS + UID_CARDS]
    holders.append(
        DemoHolder(
            "copy",
            f"{first.label.split(' — ')[0]} — copie",
            first.uid,
            True,
            note="a copy replaying an old SUN: refused, alert",
            counter=0,
        )
    )
    lost_uid = _uid(99, False)
    lost = cards.issue_card(session=session, pupil=last, uid=lost_uid, kind=CardKind.UID)
    cards.mark_lost(session=session, card=lost)
    cards.issue_card(session=session, pupil=last, uid=_uid(98, False), kind=CardKind.UID)
    holders.append(
        DemoHolder(
            "lost",
            f"{last.full_name} — carte perdue",
            lost_uid,
            False,
            note="a card reported lost: refused, alert",
        )
    )
    holders.append(
        DemoHolder(
            "stranger",
            "Carte inconnue",
            _uid(77, False),
            False,
            note="not issued here: enrol it from the office page",
        )
    )
    session.commit()
    return holders


def _top_up(session: Session, school: School, pupil: Pupil) -> None:
    assert school.id is not None
    account = pupil_account(session=session, pupil=pupil)
    if account.balance_cents > 0:
        return
    cash = school_account(session=session, school_id=school.id, kind=AccountKind.CASH_DRAWER)
    post(
        session=session,
        school_id=school.id,
        kind=TransactionKind.TOPUP,
        client_id=f"demo-topup-{uuid.uuid4()}",
        legs=[(account, TOP_UP_CENTS), (cash, -TOP_UP_CENTS)],
        memo="demo top-up",
    )


class DemoTapper:
    """Taps the demo cards on the demo till's reader, one at a time, in the background."""

    def __init__(
        self, tills: DemoTills, master_key: bytes, *, vpcd_port: int | None, emulator: object | None
    ) -> None:
        from firmware_mocks.cards import CardState, Kind
        from firmware_mocks.vpcd_card import VirtualCard

        self.till_device_id = tills.till_id
        self.reader = "pcscd + vpcd" if vpcd_port else "nfcpy udp emulator (NTAG215 only)"
        self._emulator = emulator
        self._lock = threading.Lock()
        keyring = Keyring(master_key)
        self._cards: dict[str, tuple[DemoHolder, object]] = {}
        for holder in tills.holders:
            if vpcd_port is None and holder.secure:
                continue  # the udp emulator speaks Type 2 only
            if vpcd_port is None:
                self._cards[holder.key] = (holder, CardState(Kind.NTAG215, holder.uid))
                continue
            kind = Kind.NTAG424_DNA if holder.secure else Kind.MIFARE_CLASSIC_1K
            card = VirtualCard(
                kind,
                holder.uid,
                port=vpcd_port,
                counter=holder.counter,
                meta_key=keyring.meta_read,
                file_key=keyring.file_read(holder.uid),
            )
            self._cards[holder.key] = (holder, card)

    def cards(self) -> list[DemoCard]:
        return [DemoCard(h.key, h.label, h.note) for h, _ in self._cards.values()]

    def tap(self, key: str) -> None:
        _, card = self._cards[key]
        threading.Thread(target=self._tap, args=(card,), name="demo-tap", daemon=True).start()

    def _tap(self, card: object) -> None:
        from firmware_mocks.nfc_tag import TagEmulator
        from firmware_mocks.vpcd_card import VirtualCard

        with self._lock:
            try:
                if isinstance(card, VirtualCard):
                    card.tap(3000, until_feedback=True)
                    time.sleep(0.9)  # a lifted card: pcscd looks every 400 ms
                elif isinstance(self._emulator, TagEmulator):
                    self._emulator.tap(card, 1200)  # type: ignore[arg-type]
            except OSError as exc:
                logger.warning("demo tap failed: %s", exc)


@contextmanager
def running(
    tills: DemoTills, *, data_dir: Path, server: str, master_key: bytes
) -> Iterator[DemoTapper]:
    """The reader side of the demo, from start to stop: pcscd (or the emulator), the
    daemon for the demo till, and the tapper for `/demo/tap`."""
    from cardpay.reader.daemon import ReaderDaemon
    from cardpay.reader.journal import Journal
    from firmware_mocks.nfc_tag import TagEmulator
    from hardware.readers import open_reader
    from moulin import vpcd

    pcscd: vpcd.PrivatePcscd | None = None
    emulator: TagEmulator | None = None
    try:
        pcscd = vpcd.PrivatePcscd()
        try:
            pcscd.start()
        except vpcd.PcscdUnavailable:
            pcscd.stop()
            raise
        device, how = "pcsc:Virtual PCD", f"pcscd with the vpcd driver (port {pcscd.port})"
    except vpcd.PcscdUnavailable as exc:
        pcscd = None
        emulator = TagEmulator()
        device, how = f"nfc:{emulator.path}", f"nfcpy's udp emulator ({exc}; NTAG215 cards only)"
    logger.warning("demo reader: %s", how)
    journal = Journal(data_dir / "reader" / "journal.db")
    daemon = ReaderDaemon(
        reader=open_reader(device),
        journal=journal,
        server=server,
        token=tills.till_token,
        snapshot_path=data_dir / "reader" / "snapshot.json",
    )
    thread = threading.Thread(target=daemon.run, name="demo-reader", daemon=True)
    thread.start()
    try:
        yield DemoTapper(
            tills, master_key, vpcd_port=pcscd.port if pcscd else None, emulator=emulator
        )
    finally:
        daemon.stop()
        thread.join(10)
        journal.close()
        if emulator is not None:
            emulator.close()
        if pcscd is not None:
            pcscd.stop()


def serve(tills: DemoTills, *, host: str, port: int, data_dir: Path) -> None:
    """Serve the demo app with the reader side running, until Ctrl+C."""
    import uvicorn

    from moulin import context
    from parent_portal.app import create_app

    settings = context.load_settings()
    app = create_app(settings)
    server = f"http://127.0.0.1:{port}"
    master_key = settings.effective_card_master_key()
    with running(tills, data_dir=data_dir, server=server, master_key=master_key) as tapper:
        app.state.demo_tapper = tapper
        context.console.print(
            f"[bold]Till screen:[/] http://{host}:{port}/till/{tills.till_id} "
            f"(sign in as cashier@…); tap demo cards at http://{host}:{port}/demo/tap "
            f"(reader: {tapper.reader})",
            highlight=False,
        )
        # uvicorn re-raises the signal that stopped it once it is done: make SIGTERM
        # unwind like Ctrl+C does, so that pcscd and the daemon are stopped on the way out.
        signal.signal(signal.SIGTERM, _exit_on_term)
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)


def _exit_on_term(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
