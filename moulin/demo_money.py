"""The demo school's money: tariffs, cards, tills, and four weeks of history.

Every pupil has a card, half of them plain UID cards (MIFARE Classic, 4-byte UIDs: copyable)
and half NTAG 424 DNA cards (7-byte UIDs starting 04); a few have an older card retired
or lost. Accounts were topped up at the office (cash, cheque, transfer, with receipts) or
online, lunches were served at two tills on past school days, one tapped-twice meal was
reversed and one family that moved away was refunded. All from a fixed seed, posted
through the same services as real use, so the reports and `moulin db check` agree.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from cardpay import cards, office, topups
from cardpay.account_models import IntentStatus, Tender, TopUpIntent
from cardpay.accounts import pupil_account, school_account
from cardpay.ledger import post
from cardpay.models import (
    Account,
    AccountKind,
    CanteenSettings,
    CardKind,
    CardStatus,
    LedgerTransaction,
    TransactionKind,
)
from cardpay.payments.base import PaymentConfirmed
from cardpay.rules import CanteenRules
from school.devices import add_device
from school.models import Device, DeviceKind, Pupil, School, User

# Price of a lunch by the town's income band ('quotient familial'), in cents.
DEMO_TARIFFS = {"T1": 90, "T2": 180, "T3": 290, "T4": 380, "T5": 460}
SCHOOL_DAYS = 20
OPEN_WEEKDAYS = (0, 1, 3, 4)  # Monday, Tuesday, Thursday, Friday


@dataclass
class _Books:
    session: Session
    school: School
    tills: list[Device]
    clerk: User
    rng: random.Random
    zone: ZoneInfo
    revenue: Account


def demo_rules() -> CanteenRules:
    return CanteenRules(prices_by_band=DEMO_TARIFFS)


def seed_money(session: Session, *, school: School, pupils: list[Pupil], clerk: User,
               today: date) -> None:
    """Give the demo school its tills, cards and account history (commits)."""
    session.commit()
    # Hundreds of commits follow: a session that does not reload every record after each
    # one keeps the demo quick to start.
    with Session(session.get_bind(), expire_on_commit=False) as money:
        ids = [pupil.id for pupil in pupils]
        by_id = {p.id: p for p in money.exec(select(Pupil).where(col(Pupil.id).in_(ids)))}
        mine = [by_id[i] for i in ids]
        _seed(money, money.get(School, school.id), mine, money.get(User, clerk.id), today)


def _seed(session: Session, school: School | None, pupils: list[Pupil], clerk: User | None,
          today: date) -> None:
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
    revenue = school_account(session=session, school_id=school.id or 0,
                             kind=AccountKind.MEAL_REVENUE)
    books = _Books(session, school, tills, clerk, rng, ZoneInfo(school.timezone), revenue)
    _issue_cards(session, pupils, rng, today)
    days = _past_school_days(today)
    for index, pupil in enumerate(pupils):
        _history(books, index, pupil, days)
    _mistake_reversed(books, pupils[2], days[-1])
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
                 today: date) -> None:
    """One active card each, the kinds alternating; every seventh pupil lost or wore out
    an earlier card."""
    issued = datetime.combine(today - timedelta(days=60), time(8), tzinfo=UTC)
    for index, pupil in enumerate(pupils):
        kind = CardKind.UID if index % 2 == 0 else CardKind.NTAG424
        if index % 7 == 3:
            cards.issue_card(session=session, pupil=pupil, uid=_uid(rng, kind), kind=kind,
                             clock=lambda: issued)
            replaced = CardStatus.LOST if index % 14 == 3 else CardStatus.RETIRED
            cards.issue_card(session=session, pupil=pupil, uid=_uid(rng, kind), kind=kind,
                             replaced_status=replaced, clock=lambda: issued + timedelta(days=20))
        else:
            cards.issue_card(session=session, pupil=pupil, uid=_uid(rng, kind), kind=kind,
                             clock=lambda: issued)


def _history(books: _Books, index: int, pupil: Pupil, days: list[date]) -> None:
    """A first top-up, then lunches on most days and a top-up when the balance runs low."""
    price = demo_rules().price_for(pupil.tariff_band)
    balance = _topup(books, index, pupil, days[0], books.rng.choice((2000, 3000, 4000, 5000)))
    for n, day in enumerate(days):
        if balance < 1000 and n < len(days) - 2 and books.rng.random() < 0.6:
            balance += _topup(books, index + n, pupil, day, books.rng.choice((2000, 3000)))
        if books.rng.random() < 0.88 and balance >= price > 0:
            at = _at(books, day, 11 + books.rng.randrange(0, 2), books.rng.randrange(30, 60))
            _post_meal(books, pupil, books.tills[(pupil.id or 0) % 2], price, at,
                       f"demo-tap:{pupil.id}:{n}")
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


def _post_meal(books: _Books, pupil: Pupil, till: Device, price: int, at: datetime,
               client_id: str) -> None:
    account = pupil_account(session=books.session, pupil=pupil)
    revenue = books.revenue
    clock: Callable[[], datetime] = lambda: at  # noqa: E731 - the meal's own time
    post(session=books.session, school_id=books.school.id or 0, kind=TransactionKind.MEAL,
         client_id=client_id, legs=[(account, -price), (revenue, price)], occurred_at=at,
         actor_device_id=till.id, clock=clock)


def _mistake_reversed(books: _Books, pupil: Pupil, day: date) -> None:
    """A pupil tapped twice at a till that charged both; the office reversed one."""
    at = _at(books, day, 12, 59)
    price = demo_rules().price_for(pupil.tariff_band)
    account = pupil_account(session=books.session, pupil=pupil)
    books.session.refresh(account)
    if account.balance_cents < price:
        _topup(books, 0, pupil, day, 2000)
    _post_meal(books, pupil, books.tills[0], price, at, f"demo-tap:{pupil.id}:twice")
    twice = books.session.exec(select(LedgerTransaction).where(
        LedgerTransaction.client_id == f"demo-tap:{pupil.id}:twice")).one()
    office.reverse_mistake(session=books.session, transaction=twice, reason="badgé deux fois",
                           client_id=f"demo-reversal:{pupil.id}",
                           actor=office.Actor(books.clerk.id or 0),
                           clock=lambda: at + timedelta(hours=2))


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
