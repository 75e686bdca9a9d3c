"""What a till needs to decide on its own while the server cannot be reached."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from cardpay import canteen
from cardpay.account_models import LunchSettings
from cardpay.models import Account, AccountKind, Card, CardStatus, Tap
from cardpay.rules import CanteenRules, school_day
from school.models import Classroom, Pupil, School


def rules_json(rules: CanteenRules) -> dict[str, Any]:
    data = asdict(rules)
    data["prices_by_band"] = dict(rules.prices_by_band)
    data["open_weekdays"] = sorted(rules.open_weekdays)
    data["closed_days"] = sorted(d.isoformat() for d in rules.closed_days)
    data["service_start"] = rules.service_start.isoformat()
    data["service_end"] = rules.service_end.isoformat()
    return data


def snapshot(session: Session, school: School, now: datetime) -> dict[str, Any]:
    """Cards, balances, limits and who has eaten today, for one school's tills."""
    rules = canteen.rules_for(session, school, now=now)
    start, end = canteen.day_bounds(rules, school_day(rules, now))
    pupils = session.exec(
        select(Pupil, Classroom.name)
        .join(Classroom, col(Pupil.classroom_id) == Classroom.id, isouter=True)
        .where(Pupil.school_id == school.id, col(Pupil.left_on).is_(None))
    ).all()
    accounts = {
        a.pupil_id: a
        for a in session.exec(
            select(Account).where(
                Account.school_id == school.id, Account.kind == AccountKind.PUPIL_LUNCH
            )
        ).all()
    }
    today = {
        pid: (int(spent), first)
        for pid, spent, first in session.exec(
            select(Tap.pupil_id, func.sum(Tap.price_cents), func.min(Tap.read_at))
            .where(
                Tap.school_id == school.id,
                col(Tap.accepted).is_(True),
                col(Tap.repeat_of_id).is_(None),
                col(Tap.read_at) >= start,
                col(Tap.read_at) < end,
            )
            .group_by(col(Tap.pupil_id))
        ).all()
    }
    limits = dict(
        session.exec(
            select(LunchSettings.pupil_id, LunchSettings.daily_limit_cents)
            .join(Pupil, col(LunchSettings.pupil_id) == Pupil.id)
            .where(Pupil.school_id == school.id)
        ).all()
    )
    cards = session.exec(
        select(Card)
        .join(Pupil, col(Card.pupil_id) == Pupil.id)
        .where(Pupil.school_id == school.id, col(Card.status) != CardStatus.RETIRED)
    ).all()
    return {
        "generated_at": now.isoformat(),
        "school": {
            "timezone": school.timezone,
            "currency": school.currency,
            "locale": school.locale,
        },
        "rules": rules_json(rules),
        "retap_window_seconds": canteen.retap_window(session, school.id or 0).total_seconds(),
        "cards": [
            {"uid": c.uid, "kind": c.kind.value, "status": c.status.value, "pupil_id": c.pupil_id}
            for c in cards
        ],
        "pupils": [
            _pupil(p, room, accounts.get(p.id), today.get(p.id), limits.get(p.id or 0), rules)
            for p, room in pupils
        ],
    }


def _pupil(
    pupil: Pupil,
    room: str | None,
    account: Account | None,
    today: tuple[int, datetime] | None,
    daily_limit: int | None,
    rules: CanteenRules,
) -> dict[str, Any]:
    spent, first = today if today else (0, None)
    return {
        "id": pupil.id,
        "name": pupil.full_name,
        "classroom": room or "",
        "allergies": pupil.allergies,
        "diet_notes": pupil.diet_notes,
        "tariff_band": pupil.tariff_band,
        "balance_cents": account.balance_cents if account else 0,
        "floor_cents": canteen.floor_of(account, rules) if account else rules.overdraft_floor_cents,
        "daily_limit_cents": daily_limit,
        "spent_today_cents": spent,
        "first_meal_today_at": first.isoformat() if first else None,
        "offline_allowance_cents": rules.offline_allowance_cents,
    }
