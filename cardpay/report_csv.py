"""The reports as CSV: one header row, ISO dates in the school's time zone, amounts as
decimal strings ('12.50'), never floats, so a spreadsheet or a script reads them exactly."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from cardpay.history import Statement
from cardpay.money import decimal_string
from cardpay.reports import DayReport, MealCount


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def meals_csv(rows: Sequence[MealCount]) -> str:
    return _csv(("date", "class", "tariff_band", "meals", "revenue"),
                ((r.day.isoformat(), r.classroom, r.band, r.meals, decimal_string(r.revenue_cents))
                 for r in rows))


def day_csv(report: DayReport) -> str:
    """One row per till, per drawer and per kind of top-up, with a `section` column."""
    day = report.day.isoformat()
    rows: list[Sequence[object]] = [
        (day, "till", t.name or "-", t.meals, decimal_string(t.revenue_cents), "", "", "", "",
         "")
        for t in report.tills
    ]
    rows += [
        (day, "drawer", d.name or "office", "", "", decimal_string(d.opening_cents),
         decimal_string(d.topups_cents), decimal_string(d.paid_out_cents),
         decimal_string(d.other_cents), decimal_string(d.closing_cents))
        for d in report.drawers
    ]
    rows += [
        (day, "topups", kind.value, count, decimal_string(total), "", "", "", "", "")
        for kind, (count, total) in sorted(report.topups.items())
    ]
    return _csv(("date", "section", "name", "count", "amount", "opening_cash", "cash_in",
                 "cash_out", "other", "expected_cash"), rows)


def statement_csv(statement: Statement, timezone: str) -> str:
    zone = ZoneInfo(timezone)
    rows: list[Sequence[object]] = [
        (statement.first.isoformat(), "", "opening balance", "", "",
         decimal_string(statement.opening_cents))
    ]
    rows += [
        (line.occurred_at.astimezone(zone).date().isoformat(),
         line.occurred_at.astimezone(zone).strftime("%H:%M"), line.kind.value,
         line.memo, decimal_string(line.amount_cents), decimal_string(line.balance_after_cents))
        for line in statement.lines
    ]
    rows.append((statement.last.isoformat(), "", "closing balance", "", "",
                 decimal_string(statement.closing_cents)))
    return _csv(("date", "time", "kind", "memo", "amount", "balance"), rows)
