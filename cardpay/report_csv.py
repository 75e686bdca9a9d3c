"""The reports as CSV: one header row, ISO dates in the school's time zone, amounts as
decimal numbers ('12.50', '-3.05'), never floats, so a spreadsheet or a script reads them
exactly. Cells are written by `school.csv_cells`, which neutralises text that a
spreadsheet would take for a formula (amounts are numbers and stay as they are)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from zoneinfo import ZoneInfo

from cardpay.history import Statement
from cardpay.money import decimal_string
from cardpay.reports import DayReport, MealCount
from school.csv_cells import Cell, csv_text


def _amount(cents: int) -> Decimal:
    """An amount as a number cell, '-3.05' (exact: built from the decimal string)."""
    return Decimal(decimal_string(cents))


def meals_csv(rows: Sequence[MealCount]) -> str:
    return csv_text(("date", "class", "tariff_band", "meals", "revenue"),
                ((r.day.isoformat(), r.classroom, r.band, r.meals, _amount(r.revenue_cents))
                 for r in rows))


def day_csv(report: DayReport) -> str:
    """One row per till, per drawer and per kind of top-up, with a `section` column."""
    day = report.day.isoformat()
    rows: list[Sequence[Cell]] = [
        (day, "till", t.name or "-", t.meals, _amount(t.revenue_cents), "", "", "", "",
         "")
        for t in report.tills
    ]
    rows += [
        (day, "drawer", d.name or "office", "", "", _amount(d.opening_cents),
         _amount(d.topups_cents), _amount(d.paid_out_cents),
         _amount(d.other_cents), _amount(d.closing_cents))
        for d in report.drawers
    ]
    rows += [
        (day, "topups", kind.value, count, _amount(total), "", "", "", "", "")
        for kind, (count, total) in sorted(report.topups.items())
    ]
    return csv_text(("date", "section", "name", "count", "amount", "opening_cash", "cash_in",
                 "cash_out", "other", "expected_cash"), rows)


def statement_csv(statement: Statement, timezone: str) -> str:
    zone = ZoneInfo(timezone)
    rows: list[Sequence[Cell]] = [
        (statement.first.isoformat(), "", "opening balance", "", "",
         _amount(statement.opening_cents))
    ]
    rows += [
        (line.occurred_at.astimezone(zone).date().isoformat(),
         line.occurred_at.astimezone(zone).strftime("%H:%M"), line.kind.value,
         line.memo, _amount(line.amount_cents), _amount(line.balance_after_cents))
        for line in statement.lines
    ]
    rows.append((statement.last.isoformat(), "", "closing balance", "", "",
                 _amount(statement.closing_cents)))
    return csv_text(("date", "time", "kind", "memo", "amount", "balance"), rows)
