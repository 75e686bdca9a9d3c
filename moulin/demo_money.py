"""The demo school's money: tariffs, cards, tills, and four weeks of history.

Every pupil has a card, half of them plain UID cards (MIFARE Classic, 4-byte UIDs: copyable)
and half NTAG 424 DNA cards (7-byte UIDs starting 04); a few have an older card retired
or lost. Accounts were topped up at the office (cash, cheque, transfer, with receipts) or
online, lunches were tapped at two tills on past school days, one meal counted by mistake
was reversed and one family that moved away was refunded. All from a fixed seed, through
the same services as real use: each lunch is a tap decided by the till service (its SUN
message checked, one meal a day, the floor), so the reports, the rules and `moulin db
check` agree with the history.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from cardpay import cards, office, topups
from cardpay.account_models import IntentStatus, Tender, TopUpIntent
from cardpay.accounts import pupil_account
from cardpay.models import (
    CanteenSettings,
    CardKind,
    CardStatus,
    LedgerTransaction,
    Tap,
)
from cardpay.payments.base import PaymentConfirmed
from cardpay.rules import CanteenRules
from cardpay.sun import Keyring
from cardpay.till import TapRequest, Till
from cardpay.verdicts import Verdict
from firmware_mocks.sun import build_sun_url
from school.devices import add_device
from school.models import Device, DeviceKind, Pupil, School, User

# Price of a lunch by the town's income band ('quotient familial'), in cents.
DEMO_TARIFFS = {"T1": 90, "T2": 180, "T3": 290, "T4": 380, "T5": 460}
SCHOOL_DAYS = 20
OPEN_WEEKDAYS = (0, 1, 3, 4)  # Monday, Tuesday, Thursday, Friday


@dataclass
class _Card:
    uid: bytes
    secure: bool
    counter: int = 0  # NTAG 424 DNA: the SUN read counter of its last tap


class _Taps:
    """The till service as the demo's history taps through it, its clock set to each
    meal's time (a lunch tapped then, live)."""

    def __init__(self, session: Session, master_key: bytes) -> None:
        self.now = datetime.min.replace(tzinfo=UTC)
        self.keyring = Keyring(master_key)
        self.till = Till(engine=session.get_bind(), keyring=self.keyring,  # type: ignore[arg-type]
                         clock=lambda: self.now)

    def tap(self, till: Device, card: _Card, at: datetime) -> Verdict:
        self.now, sun_url = at, None
        if card.secure:
            card.counter += 1
            sun_url = build_sun_url(
                "https://moulin.example/sun", uid=card.uid, counter=card.counter,
                meta_key=self.keyring.meta_read, file_key=self.keyring.file_read(card.uid),
            ).url
        request = TapRequest(tap_id=str(uuid.uuid4()), read_at=at,
                             uid=card.uid.hex(), sun_url=sun_url)
        return self.till.tap(till, request)


@dataclass
class _Books:
    session: Session
    school: School
    tills: list[Device]
    clerk: User
    rng: random.Random
    zone: ZoneInfo
    taps: _Taps
    cards: dict[int, _Card]


def demo_rules() -> CanteenRules:
    return CanteenRules(prices_by_band=DEMO_TARIFFS)


def seed_money(session: Session, *, school: School, pupils: list[Pupil], clerk: User,
               today: date, master_key: bytes) -> None:
    """Give the demo school its tills, cards and account history (commits). `master_key`
    is the deployment's card master key: the secure cards' taps are signed with it."""
    session.commit()
    # Hundreds of commits follow: a session that does not reload every record after each
    # one keeps the demo quick to start.
    with Session(session.get_bind(), expire_on_commit=False) as money:
        ids = [pupil.id for pupil in pupils]
        by_id = {p.id: p for p in money.exec(select(Pupil).where(col(Pupil.id).in_(ids)))}
        mine = [by_id[i] for i in ids]
        taps = _Taps(money, master_key)
        try:
            _seed(money, money.get(School, school.id), mine, money.get(User, clerk.id), today,
                  taps)
        finally:
            taps.till.close()


def _seed(session: Session, school: School | None, pupils: list[Pupil], clerk: User | None,
          today: date, taps: _Taps) -> None:
    assert school is not None
    assert clerk is not None
    rng = random.Random(424)  # noqa: S311 - demo data, not secrets
    tills = [add_device(session=session, school=school, kind=DeviceKind.TILL, name=name)[0]
             for name in ("Caisse 1", "Caisse 2")]
    # Open every day at every hour, so that a visitor can tap a card whenever they try
    # the demo; a real school keeps its own days and serving hours.
    session.add(CanteenSettings(school_id=school.id or 0, prices_by_band=DEMO_TARIFFS,
                                open_weekdays="0123456", service_start=time(0, 0),
                                service_end=time(23, 59, 59)))
    session.commit()
    books = _Books(session, school, tills, clerk, rng, ZoneInfo(school.timezone), taps,
                   _issue_cards(session, pupils, rng, today))
    session.commit()
    days = _past_school_days(today)
    for index, pupil in enumerate(pupils):
        _history(books, index, pupil, days)
    _mistake_reversed(books, pupils[2], days)
    _refund_leaver(books, pupils[-1], days[-1])


def _at(books: _Books, day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=books.zone).astimezone(UTC)


def _past_school_days(today: date) -> list[date]:
    days: list[date] = []
    day = today - timedelta(days=1)
    while len(days) < SCHOOL_DAYS:
        if day.weekday() in OPEN_WEEKDAYS:
            days.append(day)
        day -= timedelta(days=1)
    return days[::-1]


def _uid(rng: random.Random, kind: CardKind) -> str:
    if kind is CardKind.NTAG424:
        return "04" + rng.randbytes(6).hex().upper()
    first = rng.choice([b for b in range(256) if b not in (0x08, 0x88)])  # not random-ID
    return f"{first:02X}" + rng.randbytes(3).hex().upper()


def _issue_cards(session: Session, pupils: list[Pupil], rng: random.Random,
                 today: date) -> dict[int, _Card]:
    """One active card each, the kinds alternating; every seventh pupil lost or wore out
    an earlier card. The active card of each pupil, by pupil id."""
    issued = datetime.combine(today - timedelta(days=60), time(8), tzinfo=UTC)
    active: dict[int, _Card] = {}
    for index, pupil in enumerate(pupils):
        kind = CardKind.UID if index % 2 == 0 else CardKind.NTAG424
        if index % 7 == 3:
            cards.issue_card(session=session, pupil=pupil, uid=_uid(rng, kind), kind=kind,
                             clock=lambda: issued)
            replaced = CardStatus.LOST if index % 14 == 3 else CardStatus.RETIRED
            uid = _uid(rng, kind)
            cards.issue_card(session=session, pupil=pupil, uid=uid, kind=kind,
                             replaced_status=replaced, clock=lambda: issued + timedelta(days=20))
        else:
            uid = _uid(rng, kind)
            cards.issue_card(session=session, pupil=pupil, uid=uid, kind=kind,
                             clock=lambda: issued)
        assert pupil.id is not None
        active[pupil.id] = _Card(bytes.fromhex(uid), kind is CardKind.NTAG424)
    return active


def _history(books: _Books, index: int, pupil: Pupil, days: list[date]) -> None:
    """A first top-up, then lunches on most days and a top-up when the balance runs low."""
    price = demo_rules().price_for(pupil.tariff_band)
    balance = _topup(books, index, pupil, days[0], books.rng.choice((2000, 3000, 4000, 5000)))
    for n, day in enumerate(days):
        if balance < 1000 and n < len(days) - 2 and books.rng.random() < 0.6:
            balance += _topup(books, index + n, pupil, day, books.rng.choice((2000, 3000)))
        if books.rng.random() < 0.88 and balance >= price > 0:
            at = _at(books, day, 11 + books.rng.randrange(0, 2), books.rng.randrange(30, 60))
            if _lunch(books, pupil, books.tills[(pupil.id or 0) % 2], at).accepted:
                balance -= price


def _topup(books: _Books, seed: int, pupil: Pupil, day: date, cents: int) -> int:
    """Money handed in at the office, or paid online one time in five; `cents`."""
    at = _at(books, day, 8, books.rng.randrange(0, 59))
    way = seed % 5
    if way == 4:
        _online(books, pupil, cents, at)
    else:
        tender = (Tender.CASH, Tender.CASH, Tender.CHEQUE, Tender.TRANSFER)[way]
        office.office_topup(session=books.session, pupil=pupil, amount_cents=cents,
                            tender=tender, client_id=f"demo-form:{pupil.id}:{at.isoformat()}",
                            actor=office.Actor(books.clerk.id or 0), clock=lambda: at,
                            reference="démo" if tender is not Tender.CASH else "")
    return cents


def _online(books: _Books, pupil: Pupil, cents: int, at: datetime) -> None:
    intent_id = f"demo-{pupil.id}-{at:%Y%m%d%H%M}"
    books.session.add(TopUpIntent(
        intent_id=intent_id, school_id=books.school.id, pupil_id=pupil.id,  # type: ignore[arg-type]
        user_id=books.clerk.id, provider="demo", provider_ref=f"demo_{intent_id}",  # type: ignore[arg-type]
        amount_cents=cents, currency=books.school.currency, status=IntentStatus.PENDING,
        created_at=at))
    books.session.commit()
    topups.confirm(books.session, provider="demo", clock=lambda: at, paid=PaymentConfirmed(
        client_id=f"demo:{intent_id}", intent_id=intent_id, provider_ref=f"demo_{intent_id}",
        amount_cents=cents, currency=books.school.currency))


def _lunch(books: _Books, pupil: Pupil, till: Device, at: datetime) -> Verdict:
    """The pupil's card tapped at `till` at `at`, decided and charged by the till service."""
    books.session.commit()  # the till writes on its own connection
    assert pupil.id is not None
    return books.taps.tap(till, books.cards[pupil.id], at)


def _mistake_reversed(books: _Books, pupil: Pupil, days: list[date]) -> None:
    """A lunch tapped on a school-trip day, when the pupil ate a packed lunch: the office
    reversed it."""
    ate = {_local_day(books, t) for t in books.session.exec(
        select(Tap.read_at).where(Tap.pupil_id == pupil.id, col(Tap.accepted).is_(True)))}
    day = next((d for d in reversed(days) if d not in ate), days[-1])
    at = _at(books, day, 12, 59)
    price = demo_rules().price_for(pupil.tariff_band)
    account = pupil_account(session=books.session, pupil=pupil)
    books.session.refresh(account)
    if account.balance_cents < price:
        _topup(books, 0, pupil, day, 2000)
    verdict = _lunch(books, pupil, books.tills[0], at)
    if not verdict.accepted or not verdict.price_cents:
        return
    meal = books.session.exec(select(LedgerTransaction).where(
        LedgerTransaction.client_id == f"tap:{verdict.tap_id}")).one()
    office.reverse_mistake(session=books.session, transaction=meal,
                           reason="sortie scolaire : pique-nique apporté",
                           client_id=f"demo-reversal:{pupil.id}",
                           actor=office.Actor(books.clerk.id or 0),
                           clock=lambda: at + timedelta(hours=2))


def _local_day(books: _Books, at: datetime) -> date:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(books.zone).date()


def _refund_leaver(books: _Books, pupil: Pupil, day: date) -> None:
    """A family moving away at the end of the period: the balance given back in cash."""
    account = pupil_account(session=books.session, pupil=pupil)
    books.session.refresh(account)
    if account.balance_cents > 0:
        at = _at(books, day, 16, 30)
        office.refund(session=books.session, pupil=pupil, amount_cents=account.balance_cents,
                      tender=Tender.CASH, reason="départ de l'école",
                      client_id=f"demo-refund:{pupil.id}",
                      actor=office.Actor(books.clerk.id or 0), clock=lambda: at)
