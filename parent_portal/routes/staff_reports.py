"""Staff reports: meals served by day, class and tariff band; the end-of-day takings and
cash; a pupil's statement. Each as a page to read or print, and as CSV."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Request
from sqlmodel import Session, select
from starlette.responses import Response

from cardpay import history, reports
from cardpay.models import Account
from cardpay.report_csv import day_csv, meals_csv, statement_csv
from parent_portal.access import ENROL_ROLES, StaffViewer, school_ids_with
from parent_portal.chart import bar_chart
from parent_portal.deps import ClockDep, SessionDep
from parent_portal.errors import Forbidden
from parent_portal.money_access import money_schools, staff_pupil, staff_school
from parent_portal.money_view import Formats
from parent_portal.routes.parent import classroom_names
from parent_portal.templating import render
from school.errors import InvalidInput
from school.models import School

router = APIRouter()

CHART_WEEKS = 4
MAX_RANGE_DAYS = 366


def _day(value: str | None, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput("a date is written YYYY-MM-DD") from exc


def _range(first: str | None, last: str | None, today: date) -> tuple[date, date]:
    start = _day(first, today.replace(day=1))
    end = _day(last, today)
    if end < start or (end - start).days > MAX_RANGE_DAYS:
        raise InvalidInput("the range must run forwards and span at most a year")
    return start, end


def csv_response(text: str, filename: str) -> Response:
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _chart(session: Session, school: School, fmt: Formats, today: date) -> object:
    first = today - timedelta(days=today.weekday() + 7 * (CHART_WEEKS - 1))
    days = reports.meals_per_day(session, school_id=school.id or 0, timezone=school.timezone,
                                 first=first, last=today)
    return bar_chart([(f"{day:%d/%m}", f"{fmt.day(day)}: {count}", count)
                      for day, count in days])


@router.get("/staff/reports")
def reports_home(request: Request, viewer: StaffViewer, session: SessionDep,
                 clock: ClockDep, school: int | None = None) -> Response:
    chosen = staff_school(request, session, viewer, school)
    fmt = Formats.of(request, chosen)
    today = fmt.today(clock())
    return render(request, "staff_reports.html", {
        "school": chosen, "schools": money_schools(session, viewer.user_id), "fmt": fmt,
        "today": today, "month_start": today.replace(day=1),
        "chart": _chart(session, chosen, fmt, today), "weeks": CHART_WEEKS,
        "meals_report": chosen.id in school_ids_with(session, viewer.user_id, ENROL_ROLES),
        "summary": reports.day_report(session, school_id=chosen.id or 0,
                                      timezone=chosen.timezone, day=today),
    })


@router.get("/staff/reports/meals")
def meals_report(request: Request, viewer: StaffViewer, session: SessionDep, clock: ClockDep,
                 school: int | None = None, first: str | None = None,
                 last: str | None = None, format: str = "html") -> Response:
    chosen = staff_school(request, session, viewer, school)
    if chosen.id not in school_ids_with(session, viewer.user_id, ENROL_ROLES):
        # Meals by class and tariff band: the bands are for office and admins only.
        raise Forbidden("the meals report is for office and admin staff")
    fmt = Formats.of(request, chosen)
    start, end = _range(first, last, fmt.today(clock()))
    rows = reports.meals_by_class(session, school_id=chosen.id or 0, timezone=chosen.timezone,
                                  first=start, last=end)
    if format == "csv":
        return csv_response(meals_csv(rows), f"meals-{start}-{end}.csv")
    return render(request, "report_meals.html", {
        "school": chosen, "fmt": fmt, "first": start, "last": end, "rows": rows,
        "meals": sum(r.meals for r in rows), "revenue": sum(r.revenue_cents for r in rows),
    })


@router.get("/staff/reports/day")
def day_report(request: Request, viewer: StaffViewer, session: SessionDep, clock: ClockDep,
               school: int | None = None, day: str | None = None,
               format: str = "html") -> Response:
    chosen = staff_school(request, session, viewer, school)
    fmt = Formats.of(request, chosen)
    which = _day(day, fmt.today(clock()))
    report = reports.day_report(session, school_id=chosen.id or 0, timezone=chosen.timezone,
                                day=which)
    if format == "csv":
        return csv_response(day_csv(report), f"day-{which}.csv")
    return render(request, "report_day.html", {
        "school": chosen, "fmt": fmt, "report": report,
        # The receipts name pupils: for office and admins (a cashier counts the drawer).
        "receipts_named": chosen.id in school_ids_with(session, viewer.user_id, ENROL_ROLES),
        "topups": {kind.value: totals for kind, totals in report.topups.items()},
    })


@router.get("/staff/pupils/{pupil_id}/statement")
def pupil_statement(request: Request, pupil_id: int, viewer: StaffViewer,
                    session: SessionDep, clock: ClockDep, first: str | None = None,
                    last: str | None = None, format: str = "html") -> Response:
    pupil, _ = staff_pupil(request, session, viewer, pupil_id)
    school = session.get(School, pupil.school_id)
    assert school is not None
    fmt = Formats.of(request, school)
    start, end = _range(first, last, fmt.today(clock()))
    account = session.exec(select(Account).where(Account.pupil_id == pupil.id)).first()
    stmt = history.statement(session, pupil=pupil, account=account, timezone=school.timezone,
                             first=start, last=end)
    if format == "csv":
        return csv_response(statement_csv(stmt, school.timezone),
                            f"statement-{pupil.id}-{start}-{end}.csv")
    return render(request, "statement.html", {
        "school": school, "pupil": pupil, "fmt": fmt, "stmt": stmt,
        "rooms": classroom_names(session, [pupil]),
    })
