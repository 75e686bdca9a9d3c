"""A model of the whole till path, searched by hypothesis: what each till showed is what
the ledger ends with, whatever the timing, for every school.

The real code runs end to end: the reader daemon (its journal, its offline decisions, its
uplink) talks HTTP to the real app under uvicorn, which decides with the till service and
posts to the ledger. Two schools, two tills each. Between a till and the server sits a
transport that can be up, down (nothing reaches the server) or late (the server decides and
commits, the till hears nothing and decides alone, as behind a slow proxy). Tills and the
server restart mid-burst. Cards are UID cards and NTAG 424 DNA cards with their own read
counters; the model also taps copies of earlier SUN messages, SUN messages of one card under
another card's UID, cards of the other school, and sends loosely typed bodies.

The model records what each till showed (its LED: green or red) and checks after every step:
- every tap the till has synced is charged exactly what the till showed: the meal's price
  when it served one, nothing when it refused (or served a re-tap);
- a tap the server could not charge although the till served it (a copy, a card reported
  lost, a pupil gone) is listed among the till's disagreements, with what was done;
- no till shows, and no tap records, a pupil of another school;
- `moulin db check` finds nothing: balances equal their postings, transactions sum to zero,
  no transaction posts to another school's account.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import create_engine, func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from cardpay import cards, disagreements, leaving
from cardpay.accounts import pupil_account, school_account
from cardpay.errors import LeavingError
from cardpay.integrity import check_integrity
from cardpay.ledger import post
from cardpay.models import (
    Account,
    AccountKind,
    CanteenSettings,
    CardKind,
    LedgerTransaction,
    Posting,
    Tap,
    TransactionKind,
)
from cardpay.office import Actor
from cardpay.reader.daemon import DaemonSettings, ReaderDaemon
from cardpay.reader.journal import Journal, JournaledTap
from cardpay.sun import Keyring
from firmware_mocks.sun import build_sun_url
from hardware.readers import CardKind as ReadKind
from hardware.readers import CardRead
from parent_portal.app import create_app
from school import integrity
from school.db import make_engine
from school.devices import add_device
from school.migrate import upgrade
from school.models import DeviceKind, Pupil
from school.settings import Settings
from tests import factories
from tests.cardpay.reader.stack import LiveServer
from tests.conftest import FakeClock
from tests.pg import Cluster

MASTER_KEY = bytes(range(32))
KEYRING = Keyring(MASTER_KEY)
SUN_BASE = "https://moulin.test/t"
PRICES = (350, 420)  # school 0, school 1: a wrong school's price shows in the ledger
START_BALANCE = 1000
START = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
DAEMON = DaemonSettings(deadline=10.0, offline_deadline=10.0, request_timeout=10.0)


def budget() -> settings:
    """About half a minute per database in `make test`; `--hypothesis-profile=long` (a
    profile with more examples, see tests/conftest.py) searches for as long as it says."""
    loaded = settings.default
    long_run = loaded.max_examples >= 200
    return settings(
        max_examples=loaded.max_examples if long_run else 8,
        stateful_step_count=loaded.stateful_step_count if long_run else 30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None if not long_run else loaded.database,
    )


class Wire(httpx.BaseTransport):
    """The network between one till and the server: up, down, or late (the request
    reaches the server, which answers after the till has stopped waiting)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.mode = "up"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.mode == "down":
            raise httpx.ConnectError("the network is down", request=request)
        response = self.inner.handle_request(request)
        response.read()
        if self.mode == "late":
            raise httpx.ReadTimeout("the answer came after the till's deadline",
                                    request=request)
        return response

    def close(self) -> None:
        self.inner.close()


class Lamp:
    """The reader's LED as the pupil sees it: the far side of the daemon's feedback."""

    name = "model reader"

    def __init__(self) -> None:
        self.shown: list[bool] = []

    def wait_for_card(self, timeout: float) -> CardRead | None:
        return None

    def feedback(self, accepted: bool) -> None:
        self.shown.append(accepted)

    def close(self) -> None:
        pass


class TappingJournal(Journal):
    """The daemon's journal, telling the model the id of the tap it just wrote."""

    last: JournaledTap | None = None

    def record(self, card: dict[str, Any], read_at: datetime) -> JournaledTap:
        self.last = super().record(card, read_at)
        return self.last


@dataclass
class Holder:
    school: int  # 0 or 1
    pupil_id: int
    uid: bytes
    secure: bool
    counter: int = 0
    messages: list[str] = field(default_factory=list)  # SUN URLs it has mirrored
    lost: bool = False
    left: bool = False

    def next_message(self) -> str:
        self.counter += 1
        url = build_sun_url(SUN_BASE, uid=self.uid, counter=self.counter,
                            meta_key=KEYRING.meta_read, file_key=KEYRING.file_read(self.uid)).url
        self.messages.append(url)
        return url


@dataclass
class ModelTap:
    tap_id: str
    till: int
    holder: Holder
    genuine: bool  # the card itself, not a copy or a message of another card
    borrowed: bool  # a genuine message of one card sent under another card's UID
    shown: bool  # the LED was green
    repeat: bool
    verdict: dict[str, Any]


class TillBox:
    """One till: its reader daemon, journal and wire, restartable."""

    def __init__(self, school: int, token: str, server: str, folder: Path,
                 clock: Callable[[], datetime]) -> None:
        self.school, self.token, self.server, self.folder = school, token, server, folder
        self.clock = clock
        self.wire = Wire()
        self.lamp = Lamp()
        self.start()

    def start(self) -> None:
        self.journal = TappingJournal(self.folder / "journal.db")
        self.daemon = ReaderDaemon(
            reader=self.lamp, journal=self.journal, server=self.server, token=self.token,
            snapshot_path=self.folder / "snapshot.json", transport=self.wire,
            clock=self.clock, settings=DAEMON,
        )

    def stop(self) -> None:
        self.daemon.uplink.close()
        self.journal.close()

    def unsent(self) -> set[str]:
        return {t.tap_id for t in self.journal.unsent(limit=100_000)}


class World:
    """One example's whole system: a database of its own, the app and its server, the
    clock."""

    def __init__(self, database: tuple[Engine, str], root: Path) -> None:
        (self.engine, url), self.root = database, root
        self.settings = _settings(url, root)
        self.clock = FakeClock(START)
        self.live = LiveServer(self.app())
        self.live.start()

    def app(self) -> Any:
        return create_app(self.settings, self.engine, clock=self.clock)

    def restart_server(self) -> None:
        self._stop()
        self.live.app = self.app()
        self.live.start()

    def _stop(self) -> None:
        """What the app's shutdown does (the server here runs without its lifespan)."""
        self.live.stop()
        self.live.app.state.till.close()
        self.live.app.state.loop_reads.close()

    def close(self) -> None:
        self._stop()
        self.engine.dispose()


def _open_school(session: Session, index: int, price: int) -> tuple[int, list[Any]]:
    school = factories.school(session, slug=f"m{uuid.uuid4().hex[:10]}", name=f"École {index}")
    assert school.id is not None
    session.add(CanteenSettings(
        school_id=school.id, default_price_cents=price, open_weekdays="0123456",
        service_start=clock_time(0, 0), service_end=clock_time(23, 59, 59),
        one_meal_per_day=True, retap_window_seconds=10, offline_allowance_cents=2000,
    ))
    room = factories.classroom(session, school, "CE1")
    return school.id, [school, room]


class TillModel(RuleBasedStateMachine):
    new_database: Callable[[], tuple[Engine, str]]
    root: Path

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(dir=self.root))
        self.world = World(self.new_database(), self.folder)
        self.holders: list[Holder] = []
        self.taps: list[ModelTap] = []
        self.tills: list[TillBox] = []
        self.school_ids: list[int] = []
        self._build()

    def _build(self) -> None:
        engine = self.world.engine
        with Session(engine) as session:
            tokens: list[tuple[int, str]] = []
            for index, price in enumerate(PRICES):
                school_id, (school, room) = _open_school(session, index, price)
                self.school_ids.append(school_id)
                cash = school_account(session=session, school_id=school_id,
                                      kind=AccountKind.CASH_DRAWER)
                for n, secure in enumerate((True, False, True, False)):
                    pupil = factories.pupil(session, room, f"P{n}", f"S{index}",
                                            external_ref=f"{uuid.uuid4().hex[:8]}")
                    uid = (bytes([0x04, index, n]) + uuid.uuid4().bytes[:4] if secure
                           else bytes([0xC0, index, n]) + uuid.uuid4().bytes[:1])
                    cards.issue_card(session=session, pupil=pupil, uid=uid,
                                     kind=CardKind.NTAG424 if secure else CardKind.UID)
                    post(session=session, school_id=school_id, kind=TransactionKind.TOPUP,
                         client_id=f"topup-{uuid.uuid4()}",
                         legs=[(pupil_account(session=session, pupil=pupil), START_BALANCE),
                               (cash, -START_BALANCE)])
                    assert pupil.id is not None
                    self.holders.append(Holder(index, pupil.id, uid, secure))
                for t in range(2):
                    _, token = add_device(session=session, school=school, kind=DeviceKind.TILL,
                                          name=f"till {index}.{t}")
                    tokens.append((index, token))
            clerk = factories.user(session, f"office-{uuid.uuid4().hex[:8]}@example.org")
            assert clerk.id is not None
            self.clerk_id = clerk.id
            session.commit()
        for n, (index, token) in enumerate(tokens):
            folder = self.folder / f"till{n}"
            folder.mkdir()
            self.tills.append(TillBox(index, token, self.world.live.url, folder, self.world.clock))
        for box in self.tills:
            assert box.daemon.refresh_snapshot()

    def teardown(self) -> None:
        try:
            self._settle_everything()
        finally:
            for box in self.tills:
                box.stop()
                box.wire.close()
            self.world.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    def _settle_everything(self) -> None:
        """At the end, every till comes back online and sends its journal: then every tap
        is settled and the invariants cover them all."""
        for box in self.tills:
            box.wire.mode = "up"
            box.daemon.uplink.replay()
            assert not box.unsent(), "a journaled tap could not be sent"
        self.ledger_matches_the_tills()

    # -- rules -------------------------------------------------------------------------

    tills_st = st.integers(0, 3)
    holders_st = st.integers(0, 7)
    wires = st.sampled_from(["up", "up", "up", "down", "late"])

    @rule(till=tills_st, holder=holders_st, wire=wires)
    def tap(self, till: int, holder: int, wire: str) -> None:
        """A pupil's own card on a till, as the reader reads it."""
        h = self.holders[holder]
        sun = h.next_message() if h.secure else None
        self._tap(till, h, h.uid, sun, wire, genuine=True, borrowed=False)

    @precondition(lambda self: any(h.messages for h in self.holders))
    @rule(till=tills_st, data=st.data(), wire=wires)
    def tap_a_copy(self, till: int, data: st.DataObject, wire: str) -> None:
        """A copy of a message a card has already mirrored (skimmed, or a cloned tag)."""
        h = data.draw(st.sampled_from([h for h in self.holders if h.messages]))
        sun = data.draw(st.sampled_from(h.messages))
        self._tap(till, h, h.uid, sun, wire, genuine=False, borrowed=False)

    @rule(till=tills_st, holder=st.sampled_from([0, 2, 4, 6]), other=holders_st, wire=wires)
    def tap_a_borrowed_message(self, till: int, holder: int, other: int, wire: str) -> None:
        """Card X's UID sent with a fresh, genuine SUN message of card Y."""
        y, x = self.holders[holder], self.holders[other]
        if x.uid == y.uid:
            return
        self._tap(till, y, x.uid, y.next_message(), wire, genuine=False, borrowed=True)

    def _tap(self, till: int, holder: Holder, uid: bytes, sun: str | None, wire: str, *,
             genuine: bool, borrowed: bool) -> None:
        box = self.tills[till]
        box.wire.mode = wire
        kind = ReadKind.NTAG424_DNA if sun else ReadKind.MIFARE_CLASSIC_1K
        lit = len(box.lamp.shown)
        verdict = box.daemon.handle(CardRead(uid=uid, kind=kind, reader="model", sun_url=sun))
        assert len(box.lamp.shown) == lit + 1, "the till showed nothing"
        journaled = box.journal.last
        assert journaled is not None
        self.taps.append(ModelTap(journaled.tap_id, till, holder, genuine, borrowed,
                                  box.lamp.shown[-1], bool(verdict.get("repeat")), verdict))
        pupil = verdict.get("pupil")
        if pupil:
            shown_school = next(h.school for h in self.holders if h.pupil_id == pupil["id"])
            assert shown_school == box.school, "a till showed a pupil of another school"

    @rule(till=tills_st)
    def replay(self, till: int) -> None:
        box = self.tills[till]
        box.wire.mode = "up"
        box.daemon.uplink.replay()

    @rule(till=tills_st, wire=st.sampled_from(["up", "late"]))
    def replay_answered_late(self, till: int, wire: str) -> None:
        """The journal's replay reaches the server but its answer is lost: sent again."""
        box = self.tills[till]
        box.wire.mode = "late"
        box.daemon.uplink.replay()
        box.wire.mode = wire

    @rule(till=tills_st)
    def refresh_snapshot(self, till: int) -> None:
        box = self.tills[till]
        box.wire.mode = "up"
        box.daemon.refresh_snapshot()

    @rule(till=tills_st)
    def restart_till(self, till: int) -> None:
        box = self.tills[till]
        box.stop()
        box.start()

    @rule()
    def restart_server(self) -> None:
        self.world.restart_server()

    @rule(minutes=st.sampled_from([1, 7, 45, 60 * 20]))
    def time_passes(self, minutes: int) -> None:
        self.world.clock.advance(minutes=minutes)

    @rule(holder=holders_st, cents=st.sampled_from([200, 1000]))
    def top_up(self, holder: int, cents: int) -> None:
        h = self.holders[holder]
        if h.left:
            return
        with Session(self.world.engine) as session:
            pupil = session.get_one(Pupil, h.pupil_id)
            cash = school_account(session=session, school_id=pupil.school_id,
                                  kind=AccountKind.CASH_DRAWER)
            post(session=session, school_id=pupil.school_id, kind=TransactionKind.TOPUP,
                 client_id=f"topup-{uuid.uuid4()}",
                 legs=[(pupil_account(session=session, pupil=pupil), cents), (cash, -cents)])
            session.commit()

    @rule(holder=holders_st)
    def report_lost(self, holder: int) -> None:
        h = self.holders[holder]
        with Session(self.world.engine) as session:
            card = cards.find_by_uid(session, h.uid)
            assert card is not None
            if card.status.value == "active":
                cards.mark_lost(session=session, card=card)
                session.commit()
                h.lost = True

    @rule(holder=holders_st)
    def pupil_leaves(self, holder: int) -> None:
        """The family moves away: the balance refunded, the cards retired, the account
        closed; a till that has not heard yet may still serve the card offline."""
        h = self.holders[holder]
        if h.left:
            return
        with Session(self.world.engine) as session:
            pupil = session.get_one(Pupil, h.pupil_id)
            today = self.world.clock().date()
            try:
                leaving.close_account(
                    session=session, pupil=pupil, left_on=today, today=today,
                    settlement=leaving.Settlement(leaving.Settle.REFUND, reason="départ"),
                    client_id=f"leave-{uuid.uuid4()}", actor=Actor(self.clerk_id),
                    clock=self.world.clock)
            except LeavingError:  # in debt: the office settles that first
                session.rollback()
                return
            session.commit()
        h.left = True

    @rule(till=tills_st, holder=holders_st,
          loose=st.sampled_from(["yes", "true", 1, 0, "1", "null"]))
    def loosely_typed_body(self, till: int, holder: int, loose: object) -> None:
        """A body whose offline verdict is not a JSON boolean: refused whole, nothing kept."""
        box, h = self.tills[till], self.holders[holder]
        tap_id = str(uuid.uuid4())
        body = {"tap_id": tap_id, "read_at": self.world.clock().isoformat(),
                "card": {"uid": h.uid.hex().upper()}, "offline_accepted": loose}
        answer = httpx.post(f"{self.world.live.url}/api/till/taps", json=body,
                            headers={"Authorization": f"Bearer {box.token}"}, timeout=10)
        assert answer.status_code == 422, f"{loose!r} taken as a boolean: {answer.text}"
        with Session(self.world.engine) as session:
            assert session.exec(select(Tap.id).where(Tap.tap_id == tap_id)).first() is None

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def ledger_matches_the_tills(self) -> None:
        if not self.taps:
            return
        unsent = set().union(*(box.unsent() for box in self.tills))
        settled = [t for t in self.taps if t.tap_id not in unsent]
        charges = self._charges()
        listed = self._disagreements()
        for t in settled:
            charged = charges.get(t.tap_id, 0)
            price = PRICES[t.holder.school]
            meal = t.shown and not t.repeat
            other_school = t.holder.school != self.tills[t.till].school
            if other_school or not meal or t.borrowed:
                assert charged == 0, f"{_describe(t)}: charged {charged}, no meal to charge"
                if meal and t.borrowed:
                    assert t.tap_id in listed, f"{_describe(t)}: served, not charged, not listed"
                continue
            clean = t.genuine and not t.holder.lost and not t.holder.left
            if clean:
                assert charged == price, f"{_describe(t)}: a meal served, charged {charged}"
            else:
                assert charged in (0, price), f"{_describe(t)}: charged {charged}"
                if charged == 0:
                    assert t.tap_id in listed, f"{_describe(t)}: served, not charged, not listed"

    @invariant()
    def no_school_touches_another(self) -> None:
        with Session(self.world.engine) as session:
            crossed = session.exec(
                select(func.count()).select_from(Tap)
                .join(Pupil, col(Pupil.id) == col(Tap.pupil_id))
                .where(col(Tap.school_id).in_(self.school_ids),
                       col(Pupil.school_id) != col(Tap.school_id))
            ).one()
            assert crossed == 0, "a tap records a pupil of another school"
            problems = [*integrity.check(session), *check_integrity(session)]
        assert problems == [], problems

    def _charges(self) -> dict[str, int]:
        """Each tap's net charge to pupils' lunch accounts, from every transaction that
        names it (the meal, and whatever settled it later)."""
        ids = {t.tap_id for t in self.taps}
        with Session(self.world.engine) as session:
            rows = session.exec(
                select(LedgerTransaction.client_id, func.sum(Posting.amount_cents))
                .join(Posting, col(Posting.transaction_id) == col(LedgerTransaction.id))
                .join(Account, col(Account.id) == col(Posting.account_id))
                .where(Account.kind == AccountKind.PUPIL_LUNCH,
                       col(LedgerTransaction.school_id).in_(self.school_ids),
                       col(LedgerTransaction.kind) != TransactionKind.TOPUP)
                .group_by(col(LedgerTransaction.client_id))
            ).all()
        charged: dict[str, int] = {}
        for client_id, cents in rows:
            tap_id = str(client_id)[-36:]
            if tap_id in ids:
                charged[tap_id] = charged.get(tap_id, 0) - int(cents)
        return charged

    def _disagreements(self) -> set[str]:
        with Session(self.world.engine) as session:
            return {d.tap_id for school_id in self.school_ids
                    for d in disagreements.listed(session, school_id=school_id)}


def _describe(t: ModelTap) -> str:
    shown = "served" if t.shown else "refused"
    return (f"tap {t.tap_id[:8]} at till {t.till} of school {t.till // 2}, "
            f"{'genuine' if t.genuine else 'copied'} card of school {t.holder.school} "
            f"({'secure' if t.holder.secure else 'UID'}), {shown}"
            f"{' (re-tap)' if t.repeat else ''}, {t.verdict.get('reason')}"
            f"{' offline' if t.verdict.get('decided_offline') else ''}")


def _settings(database_url: str, root: Path) -> Settings:
    return Settings(environment="test", data_dir=root / "var", secret_key="t" * 40,
                    database_url=database_url, card_master_key=MASTER_KEY.hex())


def _run(new_database: Callable[[], tuple[Engine, str]], root: Path) -> None:
    class Machine(TillModel):
        pass

    Machine.new_database, Machine.root = staticmethod(new_database), root
    run_state_machine_as_test(Machine, settings=budget())


@pytest.mark.timeout(900)  # a failing run shrinks its example: give it room
def test_the_ledger_ends_with_what_the_tills_did_sqlite(
    _migrated_sqlite: Path, tmp_path: Path,  # noqa: PT019 - its value: the template
) -> None:
    def new_database() -> tuple[Engine, str]:
        path = tmp_path / f"{uuid.uuid4().hex}.db"
        shutil.copy(_migrated_sqlite, path)
        url = f"sqlite:///{path}"
        return make_engine(url), url

    _run(new_database, tmp_path)


@pytest.mark.postgres
@pytest.mark.timeout(900)
def test_the_ledger_ends_with_what_the_tills_did_postgres(
    pg_cluster: Cluster, pg_url: str, tmp_path: Path,
) -> None:
    template = make_engine(pg_url)
    upgrade(template)
    template.dispose()
    admin = create_engine(pg_cluster.url(), isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def new_database() -> tuple[Engine, str]:
        name = f"m_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_url.rsplit("/", 1)[1]}"'))
        made.append(name)
        url = pg_cluster.url(name)
        return make_engine(url), url

    try:
        _run(new_database, tmp_path)
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_card_of_the_model_is_what_the_server_expects(engine: Engine) -> None:
    """The model's SUN messages check out with the server's keyring (else every secure
    tap would be refused and the model would prove little)."""
    uid = bytes.fromhex("04AABBCCDDEEFF")
    holder = Holder(0, 1, uid, True)
    from cardpay.sun import SunMessage

    verified = KEYRING.verify(SunMessage.from_url(holder.next_message()))
    assert (verified.uid, verified.counter) == (uid, 1)
