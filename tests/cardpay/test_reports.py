"""Reports agree with the ledger, and their CSV reads back to the same figures."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from cardpay import cards, history, office, reports
from cardpay.account_models import Tender
from cardpay.accounts import pupil_account, school_account
from cardpay.ledger import balance_of
from cardpay.models import (
    AccountKind,
    CanteenSettings,
    CardKind,
    LedgerTransaction,
    TransactionKind,
)
from cardpay.report_csv import day_csv, meals_csv, statement_csv
from cardpay.sun import Keyring
from cardpay.till import TapRequest, Till
from school.models import Device
from tests import factories
from tests.conftest import FakeClock
from tests.factories import SmallSchool

TZ = "Europe/Paris"
MON, TUE, THU = date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 19)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    """A time on `day`, given in UTC (Paris is UTC+1 in November)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@pytest.fixture
def week(session: Session, small_school: SmallSchool) -> tuple[SmallSchool, Device]:
    """Léa (CP, T1), Hugo (CP, T3), Jules (CE1, T3) eat Monday, Tuesday and Thursday
    at the till; one of Tuesday's meals was a mistake, reversed. Office top-ups on
    Tuesday in cash, cheque and transfer; a cash refund."""
    lea, hugo, jules = small_school.pupils
    for pupil, band in ((lea, "T1"), (hugo, "T3"), (jules, "T3")):
        pupil.tariff_band = band
    session.commit()
    device = factories.till(session, small_school.school)
    prices = {"T1": 90, "T3": 350}
    for day in (MON, TUE, THU):
        for n, pupil in enumerate((lea, hugo, jules)):
            factories.meal(session, pupil, prices[pupil.tariff_band], at=_at(day, 11, n),
                           device=device)
    mistake = factories.meal(session, hugo, 350, at=_at(TUE, 11, 30), device=device)
    actor = office.Actor(user_id=small_school.office.id or 0)
    office.reverse_mistake(session=session, transaction=mistake, reason="tapped twice",
                           client_id="rev-1", actor=actor, clock=lambda: _at(TUE, 12))
    for n, (tender, cents) in enumerate(((Tender.CASH, 2000), (Tender.CASH, 1500),
                                         (Tender.CHEQUE, 4000), (Tender.TRANSFER, 3000))):
        office.office_topup(session=session, pupil=lea, amount_cents=cents, tender=tender,
                            client_id=f"form-{n}", actor=actor, clock=lambda n=n: _at(TUE, 8, n))
    office.refund(session=session, pupil=lea, amount_cents=500, tender=Tender.CASH,
                  reason="overpaid", client_id="ref-1", actor=actor, clock=lambda: _at(TUE, 9))
    return small_school, device


def test_meals_by_class_and_band_add_up_to_meal_revenue(
    session: Session, week: tuple[SmallSchool, Device]
) -> None:
    school, _ = week
    rows = reports.meals_by_class(session, school_id=school.school.id or 0, timezone=TZ,
                                  first=MON, last=THU)
    assert [(r.day, r.classroom, r.band, r.meals, r.revenue_cents) for r in rows] == [
        (day, room, band, 1, cents)
        for day in (MON, TUE, THU)
        for room, band, cents in (("CE1", "T3", 350), ("CP", "T1", 90), ("CP", "T3", 350))
    ]
    revenue = school_account(session=session, school_id=school.school.id or 0,
                             kind=AccountKind.MEAL_REVENUE)
    assert sum(r.revenue_cents for r in rows) == balance_of(session, revenue) == 3 * 790
    assert reports.meals_per_day(session, school_id=school.school.id or 0, timezone=TZ,
                                 first=MON, last=date(2026, 11, 22)) == [
        (MON, 3), (TUE, 3), (date(2026, 11, 18), 0), (THU, 3), (date(2026, 11, 20), 0)]


def test_the_csv_reads_back_to_the_same_figures(
    session: Session, week: tuple[SmallSchool, Device]
) -> None:
    school, _ = week
    rows = reports.meals_by_class(session, school_id=school.school.id or 0, timezone=TZ,
                                  first=MON, last=THU)
    parsed = list(csv.DictReader(io.StringIO(meals_csv(rows))))
    assert list(parsed[0]) == ["date", "class", "tariff_band", "meals", "revenue"]
    assert parsed[1] == {"date": "2026-11-16", "class": "CP", "tariff_band": "T1",
                         "meals": "1", "revenue": "0.90"}
    assert sum(Decimal(r["revenue"]) for r in parsed) == Decimal("23.70")
    assert sum(int(r["meals"]) for r in parsed) == 9


def test_end_of_day_cash_and_takings(session: Session,
                                     week: tuple[SmallSchool, Device]) -> None:
    school, _ = week
    day = reports.day_report(session, school_id=school.school.id or 0, timezone=TZ, day=TUE)
    assert [(t.name, t.meals, t.revenue_cents) for t in day.tills] == [("Till 1", 3, 790)]
    office_drawer, till_drawer = day.drawers
    assert (till_drawer.name, till_drawer.closing_cents) == ("Till 1", 0)
    assert (office_drawer.opening_cents, office_drawer.topups_cents,
            office_drawer.paid_out_cents, office_drawer.closing_cents) == (0, 3500, 500, 3000)
    drawer = school_account(session=session, school_id=school.school.id or 0,
                            kind=AccountKind.CASH_DRAWER)
    assert office_drawer.closing_cents == -balance_of(session, drawer)
    assert day.topups == {AccountKind.CASH_DRAWER: (2, 3500), AccountKind.CHEQUES: (1, 4000),
                          AccountKind.BANK: (1, 3000)}
    assert [(r.number, name, reversed_) for r, name, reversed_ in day.receipts] == [
        (1, "Léa Martin", False), (2, "Léa Martin", False), (3, "Léa Martin", False),
        (4, "Léa Martin", False)]
    parsed = list(csv.DictReader(io.StringIO(day_csv(day))))
    drawer_row = next(r for r in parsed if r["section"] == "drawer" and r["name"] == "office")
    assert (drawer_row["cash_in"], drawer_row["cash_out"], drawer_row["expected_cash"]) == (
        "35.00", "5.00", "30.00")
    assert next(r for r in parsed if r["section"] == "till")["amount"] == "7.90"
    thursday = reports.day_report(session, school_id=school.school.id or 0, timezone=TZ,
                                  day=THU)
    assert thursday.drawers[0].opening_cents == 3000


def test_a_statement_runs_from_its_opening_to_its_closing_balance(
    session: Session, week: tuple[SmallSchool, Device]
) -> None:
    school, _ = week
    lea = school.pupils[0]
    account = pupil_account(session=session, pupil=lea)
    stmt = history.statement(session, pupil=lea, account=account, timezone=TZ,
                             first=TUE, last=THU)
    assert stmt.opening_cents == -90  # Monday's meal, before any top-up
    assert stmt.closing_cents == account.balance_cents == -90 + 10500 - 500 - 180
    assert stmt.opening_cents + sum(line.amount_cents for line in stmt.lines) == \
        stmt.closing_cents
    assert stmt.lines[-1].balance_after_cents == stmt.closing_cents
    assert stmt.totals == {TransactionKind.MEAL: -180, TransactionKind.TOPUP: 10500,
                           TransactionKind.REFUND: -500}
    assert [line.receipt_number for line in stmt.lines if line.receipt_number] == [1, 2, 3, 4]
    parsed = list(csv.reader(io.StringIO(statement_csv(stmt, TZ))))
    assert parsed[0] == ["date", "time", "kind", "memo", "amount", "balance"]
    assert parsed[1][2:] == ["opening balance", "", "", "-0.90"]
    assert parsed[-1][2:] == ["closing balance", "", "", "97.30"]
    assert Decimal(parsed[1][5]) + sum(Decimal(r[4]) for r in parsed[2:-1]) == Decimal("97.30")


def test_a_reversed_meal_is_marked_in_the_history(
    session: Session, week: tuple[SmallSchool, Device]
) -> None:
    school, _ = week
    hugo = school.pupils[1]
    lines = history.lines(session, pupil_account(session=session, pupil=hugo))
    reversal = lines[0]
    original = session.exec(select(LedgerTransaction)
                            .where(LedgerTransaction.id == reversal.reverses_id)).one()
    assert reversal.kind is TransactionKind.REVERSAL
    assert reversal.memo == "tapped twice"
    assert next(li for li in lines if li.transaction_id == original.id).reversed_by_id == \
        reversal.transaction_id


def test_free_meals_are_counted_once_at_no_revenue(
    engine: Engine, session: Session, small_school: SmallSchool, clock: FakeClock
) -> None:
    """A pupil in a free band eats without a ledger posting; the report still counts the
    meal (once, though the card was held on the reader twice), and no revenue."""
    lea = small_school.pupils[0]
    lea.tariff_band = "FREE"
    session.add(CanteenSettings(school_id=small_school.school.id,
                                prices_by_band={"FREE": 0}, default_price_cents=350))
    device = factories.till(session, small_school.school)
    cards.issue_card(session=session, pupil=lea, uid="04A1B2C3D4E5F6", kind=CardKind.UID)
    session.commit()
    clock.now = _at(TUE, 11)
    till = Till(engine=engine, keyring=Keyring(bytes(16)), clock=clock)
    first = till.tap(device, TapRequest(tap_id="t-1", read_at=clock(), uid="04A1B2C3D4E5F6"))
    clock.advance(seconds=2)
    again = till.tap(device, TapRequest(tap_id="t-2", read_at=clock(), uid="04A1B2C3D4E5F6"))
    assert (first.accepted, first.price_cents, again.repeat) == (True, 0, True)
    session.rollback()  # end the read that began when the till read `device`

    rows = reports.meals_by_class(session, school_id=small_school.school.id or 0, timezone=TZ,
                                  first=TUE, last=TUE)
    assert [(r.classroom, r.band, r.meals, r.revenue_cents) for r in rows] == [
        ("CP", "FREE", 1, 0)]
    day = reports.day_report(session, school_id=small_school.school.id or 0, timezone=TZ,
                             day=TUE)
    assert [(t.name, t.meals, t.revenue_cents) for t in day.tills] == [("Till 1", 1, 0)]
