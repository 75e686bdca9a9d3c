"""Reports for staff, read from the ledger: meals served by day, class and tariff band;
the end-of-day takings and cash reconciliation; meals per day for a chart.

A meal counts on the school day it was eaten (its `occurred_at`, in the school's time
zone), and a meal since reversed does not count at all, so the revenue of the meals
reported is what the meal revenue account gained from them. Class and tariff band are
the pupil's current ones. Free meals post nothing to the ledger: they are counted from the
till's taps (accepted, not a repeat of an earlier tap), at no revenue.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from cardpay.account_models import Receipt
from cardpay.history import utc_range
from cardpay.models import (
    Account,
    AccountKind,
    LedgerTransaction,
    Posting,
    Tap,
    TransactionKind,
)
from school.models import Classroom, Device, DeviceKind, Pupil


@dataclass(frozen=True)
class MealCount:
    day: date
    classroom: str
    band: str
    meals: int
    revenue_cents: int


def _not_reversed() -> ColumnElement[bool]:
    later = aliased(LedgerTransaction)
    return ~exists().where(col(later.reverses_id) == col(LedgerTransaction.id))


def _meals(session: Session, school_id: int, timezone: str, first: date,
           last: date) -> list[tuple[date, str, str, int, int | None]]:
    """(local day, class, band, cents, device id) for every meal not reversed."""
    start, end = utc_range(timezone, first, last)
    rows = session.execute(
        sa_select(col(LedgerTransaction.occurred_at), col(Classroom.name),
                  col(Pupil.tariff_band), col(Posting.amount_cents),
                  col(LedgerTransaction.actor_device_id))
        .join(Posting, col(Posting.transaction_id) == col(LedgerTransaction.id))
        .join(Account, and_(col(Account.id) == col(Posting.account_id),
                            col(Account.kind) == AccountKind.PUPIL_LUNCH))
        .join(Pupil, col(Pupil.id) == col(Account.pupil_id))
        .join(Classroom, col(Classroom.id) == col(Pupil.classroom_id), isouter=True)
        .where(col(LedgerTransaction.school_id) == school_id,
               col(LedgerTransaction.kind) == TransactionKind.MEAL,
               col(LedgerTransaction.occurred_at) >= start,
               col(LedgerTransaction.occurred_at) < end,
               _not_reversed())
    ).all()
    zone = ZoneInfo(timezone)
    return [(at.astimezone(zone).date(), room or "", band, -int(cents), device)
            for at, room, band, cents, device in [*rows, *_free_meals(session, school_id,
                                                                      start, end)]]


def _free_meals(session: Session, school_id: int, start: datetime,
                end: datetime) -> list[tuple[datetime, str | None, str, int, int | None]]:
    """(read at, class, band, 0, device) for every free meal served: an accepted tap at
    no charge that does not repeat an earlier one."""
    rows = session.execute(
        sa_select(col(Tap.read_at), col(Classroom.name), col(Pupil.tariff_band),
                  col(Tap.device_id))
        .join(Pupil, col(Pupil.id) == col(Tap.pupil_id))
        .join(Classroom, col(Classroom.id) == col(Pupil.classroom_id), isouter=True)
        .where(col(Tap.school_id) == school_id, col(Tap.accepted),
               col(Tap.price_cents) == 0, col(Tap.repeat_of_id).is_(None),
               col(Tap.read_at) >= start, col(Tap.read_at) < end)
    ).all()
    return [(at, room, band, 0, device) for at, room, band, device in rows]


def meals_by_class(session: Session, *, school_id: int, timezone: str, first: date,
                   last: date) -> list[MealCount]:
    """Meals served and their revenue per day, class and tariff band."""
    totals: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for day, room, band, cents, _ in _meals(session, school_id, timezone, first, last):
        totals[day, room, band][0] += 1
        totals[day, room, band][1] += cents
    return [MealCount(day, room, band, meals, cents)
            for (day, room, band), (meals, cents) in sorted(totals.items())]


def meals_per_day(session: Session, *, school_id: int, timezone: str, first: date,
                  last: date) -> list[tuple[date, int]]:
    """Meals served each weekday from `first` to `last`, zero where none were."""
    counts = Counter(day for day, *_ in _meals(session, school_id, timezone, first, last))
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [(day, counts.get(day, 0)) for day in days if day.weekday() < 5]


@dataclass(frozen=True)
class TillTakings:
    name: str
    meals: int
    revenue_cents: int


@dataclass(frozen=True)
class Drawer:
    """Cash expected in one drawer: what it held at the start of the day, plus cash
    received for top-ups, less cash paid out (refunds, transfers), plus or minus
    reversals."""

    name: str
    opening_cents: int
    topups_cents: int
    paid_out_cents: int
    other_cents: int

    @property
    def closing_cents(self) -> int:
        return self.opening_cents + self.topups_cents - self.paid_out_cents + self.other_cents


@dataclass(frozen=True)
class DayReport:
    day: date
    tills: list[TillTakings]
    drawers: list[Drawer]
    # Top-ups by the account that received the money: cash, cheques, bank, online.
    topups: dict[AccountKind, tuple[int, int]] = field(default_factory=dict)
    receipts: list[tuple[Receipt, str, bool]] = field(default_factory=list)

    @property
    def meals(self) -> int:
        return sum(t.meals for t in self.tills)

    @property
    def revenue_cents(self) -> int:
        return sum(t.revenue_cents for t in self.tills)


def day_report(session: Session, *, school_id: int, timezone: str, day: date) -> DayReport:
    """The end-of-day report: takings per till, cash per drawer, top-ups by tender."""
    devices = session.exec(select(Device).where(Device.school_id == school_id)).all()
    names: dict[int | None, str] = {d.id: d.name for d in devices}
    tills = {d.id for d in devices if d.kind is DeviceKind.TILL and d.revoked_at is None}
    takings: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])
    for _, _, _, cents, device in _meals(session, school_id, timezone, day, day):
        takings[device][0] += 1
        takings[device][1] += cents
    start, end = utc_range(timezone, day, day)
    return DayReport(day=day,
                     tills=[TillTakings(names.get(device, "") if device else "", meals, cents)
                            for device, (meals, cents) in sorted(takings.items(),
                                                                 key=lambda i: i[0] or 0)],
                     drawers=_drawers(session, school_id, names, tills, start, end),
                     topups=_topups(session, school_id, start, end),
                     receipts=_receipts(session, school_id, start, end))


def _drawers(session: Session, school_id: int, names: dict[int | None, str],
             tills: set[int | None], start: datetime, end: datetime) -> list[Drawer]:
    """The office drawer, then every till's, empty until it has an account."""
    accounts = {a.device_id: a for a in session.exec(select(Account).where(
        Account.school_id == school_id, Account.kind == AccountKind.CASH_DRAWER)).all()}
    order = sorted(set(accounts) | tills, key=lambda device: (device is not None, device or 0))
    return [_drawer(session, accounts[device], start, end, names.get(device, ""))
            if device in accounts else Drawer(names.get(device, ""), 0, 0, 0, 0)
            for device in order]


def _drawer(session: Session, drawer: Account, start: datetime, end: datetime,
            name: str) -> Drawer:
    moves = session.execute(
        sa_select(col(LedgerTransaction.kind), col(Posting.amount_cents),
                  col(LedgerTransaction.created_at))
        .join(Posting, col(Posting.transaction_id) == col(LedgerTransaction.id))
        .where(col(Posting.account_id) == drawer.id, col(LedgerTransaction.created_at) < end)
    ).all()
    # Cash in a drawer is the negative of its balance (see cardpay.models).
    today = [(kind, -cents) for kind, cents, at in moves if at >= start]
    paid_out = (TransactionKind.REFUND, TransactionKind.TRANSFER)
    return Drawer(
        name=name, opening_cents=-sum(cents for _, cents, at in moves if at < start),
        topups_cents=sum(c for k, c in today if k is TransactionKind.TOPUP),
        paid_out_cents=-sum(c for k, c in today if k in paid_out),
        other_cents=sum(c for k, c in today if k is not TransactionKind.TOPUP
                        and k not in paid_out),
    )


def _topups(session: Session, school_id: int, start: datetime,
            end: datetime) -> dict[AccountKind, tuple[int, int]]:
    rows = session.execute(
        sa_select(col(Account.kind), col(Posting.amount_cents))
        .join(Posting, col(Posting.account_id) == col(Account.id))
        .join(LedgerTransaction, col(LedgerTransaction.id) == col(Posting.transaction_id))
        .where(col(LedgerTransaction.school_id) == school_id,
               col(LedgerTransaction.kind) == TransactionKind.TOPUP,
               col(Account.kind) != AccountKind.PUPIL_LUNCH,
               col(LedgerTransaction.created_at) >= start,
               col(LedgerTransaction.created_at) < end,
               _not_reversed())
    ).all()
    totals: dict[AccountKind, tuple[int, int]] = {}
    for kind, cents in rows:
        count, total = totals.get(kind, (0, 0))
        totals[kind] = (count + 1, total - int(cents))
    return totals


def _receipts(session: Session, school_id: int, start: datetime,
              end: datetime) -> list[tuple[Receipt, str, bool]]:
    """The day's receipts with the pupil's name and whether the top-up was reversed."""
    reversal = aliased(LedgerTransaction)
    rows = session.execute(
        sa_select(Receipt, Pupil, col(reversal.id))
        .join(Pupil, col(Pupil.id) == col(Receipt.pupil_id))
        .join(LedgerTransaction, col(LedgerTransaction.client_id) == col(Receipt.client_id))
        .join(reversal, col(reversal.reverses_id) == col(LedgerTransaction.id), isouter=True)
        .where(col(Receipt.school_id) == school_id, col(Receipt.issued_at) >= start,
               col(Receipt.issued_at) < end)
        .order_by(col(Receipt.number))
    ).all()
    return [(receipt, pupil.full_name, reversed_id is not None)
            for receipt, pupil, reversed_id in rows]
