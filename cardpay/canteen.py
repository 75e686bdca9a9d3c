"""What the rules need from the database: a school's canteen rules and a pupil's day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from cardpay.models import Account, CanteenSettings, Tap
from cardpay.rules import CanteenRules
from school.models import ClosedDay, School

# How far back closed days are read: as far back as a till's journal may send a tap from
# (cardpay.till.MAX_OFFLINE_AGE), and a day more for the time zones.
CLOSED_DAYS_BACK = timedelta(days=15)


def rules_for(session: Session, school: School, *, now: datetime) -> CanteenRules:
    """The school's canteen rules at `now` (from the caller's clock, never the wall's),
    with its calendar's closed days from a little before that day on."""
    settings = session.exec(
        select(CanteenSettings).where(CanteenSettings.school_id == school.id)
    ).first() or CanteenSettings(school_id=school.id or 0)
    today = now.astimezone(ZoneInfo(school.timezone)).date()
    closed = session.exec(
        select(col(ClosedDay.day)).where(
            ClosedDay.school_id == school.id, col(ClosedDay.day) >= today - CLOSED_DAYS_BACK
        )
    ).all()
    return CanteenRules(
        timezone=school.timezone,
        prices_by_band=dict(settings.prices_by_band),
        default_price_cents=settings.default_price_cents,
        overdraft_floor_cents=settings.overdraft_floor_cents,
        open_weekdays=frozenset(int(d) for d in settings.open_weekdays),
        closed_days=frozenset(closed),
        service_start=settings.service_start,
        service_end=settings.service_end,
        one_meal_per_day=settings.one_meal_per_day,
        offline_allowance_cents=settings.offline_allowance_cents,
    )


def retap_window(session: Session, school_id: int) -> timedelta:
    seconds = session.exec(
        select(CanteenSettings.retap_window_seconds).where(CanteenSettings.school_id == school_id)
    ).first()
    return timedelta(seconds=10 if seconds is None else seconds)


def day_bounds(rules: CanteenRules, day: date) -> tuple[datetime, datetime]:
    """The school day `day` as a UTC interval [start, end)."""
    tz = ZoneInfo(rules.timezone)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class PupilDay:
    spent_cents: int
    first_meal_at: datetime | None


def pupil_day(session: Session, pupil_id: int, bounds: tuple[datetime, datetime]) -> PupilDay:
    """What a pupil has eaten and spent in the canteen on one school day."""
    start, end = bounds
    spent, first = session.exec(
        select(func.coalesce(func.sum(Tap.price_cents), 0), func.min(Tap.read_at)).where(
            Tap.pupil_id == pupil_id,
            col(Tap.accepted).is_(True),
            col(Tap.repeat_of_id).is_(None),
            col(Tap.read_at) >= start,
            col(Tap.read_at) < end,
        )
    ).one()
    first_at = first if first is None or first.tzinfo else first.replace(tzinfo=UTC)
    return PupilDay(spent_cents=int(spent), first_meal_at=first_at)


def first_meal_before(session: Session, tap: Tap) -> datetime | None:
    """When the pupil of `tap` first ate on that school day (for 'already served at')."""
    school = session.get(School, tap.school_id)
    if school is None or tap.pupil_id is None:
        return None
    tz = ZoneInfo(school.timezone)
    day = tap.read_at.astimezone(tz).date()
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    return pupil_day(session, tap.pupil_id, (start, tap.read_at)).first_meal_at


def floor_of(account: Account, rules: CanteenRules) -> int:
    return rules.overdraft_floor_cents if account.floor_cents is None else account.floor_cents


def lock(session: Session, account: Account) -> Account:
    """Hold the pupil's account row until commit (PostgreSQL), re-read, so that two tills
    deciding for the same pupil at once decide one after the other. SQLite's BEGIN
    IMMEDIATE already serialises every writer."""
    if session.get_bind().dialect.name == "sqlite":
        return account
    return session.exec(
        select(Account)
        .where(Account.id == account.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
