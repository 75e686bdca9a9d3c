"""Changing a school's canteen rules: prices per tariff band, overdraft, serving days and
hours, the offline allowance, the re-tap window and the default low-balance alert.

All values arrive already parsed (integer cents, times, sets); `save` checks them as a
whole, refuses the lot if one is wrong, and writes one audit row naming each changed
value before and after. The caller commits. Tills pick up new rules within a few seconds
(`cardpay.till.RULES_TTL_S`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import time
from typing import Any

from sqlmodel import Session, select

from cardpay.account_models import DEFAULT_LOW_BALANCE_ALERT_CENTS, SchoolAlertSettings
from cardpay.models import CanteenSettings
from school import audit
from school.errors import InvalidInput

BAND_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,31}$")
MAX_PRICE_CENTS = 100_00
MAX_OVERDRAFT_CENTS = 500_00
MAX_OFFLINE_CENTS = 100_00
MAX_ALERT_CENTS = 1000_00
MAX_RETAP_SECONDS = 600


@dataclass(frozen=True)
class CanteenChoices:
    """What the settings page edits. A band priced 0 eats free; pupils of a band with no
    price of its own pay the default price."""

    default_price_cents: int = 350
    prices_by_band: dict[str, int] = field(default_factory=dict)
    overdraft_floor_cents: int = 0  # zero or below: how far a balance may go negative
    open_weekdays: frozenset[int] = frozenset({0, 1, 3, 4})
    service_start: time = time(11, 0)
    service_end: time = time(14, 30)
    one_meal_per_day: bool = True
    offline_allowance_cents: int = 700
    retap_window_seconds: int = 10
    low_balance_alert_cents: int = DEFAULT_LOW_BALANCE_ALERT_CENTS

    def check(self) -> None:
        for band, price in {**self.prices_by_band, "": self.default_price_cents}.items():
            if band and not BAND_NAME.match(band):
                raise InvalidInput(f"bad tariff band name {band[:40]!r}")
            _within(price, 0, MAX_PRICE_CENTS, "a meal price")
        _within(-self.overdraft_floor_cents, 0, MAX_OVERDRAFT_CENTS, "the overdraft")
        _within(self.offline_allowance_cents, 0, MAX_OFFLINE_CENTS, "the offline allowance")
        _within(self.low_balance_alert_cents, 0, MAX_ALERT_CENTS, "the low-balance alert")
        _within(self.retap_window_seconds, 0, MAX_RETAP_SECONDS, "the re-tap window")
        if not self.open_weekdays <= set(range(7)):
            raise InvalidInput("weekdays are 0 (Monday) to 6 (Sunday)")
        if not self.service_start < self.service_end:
            raise InvalidInput("service must end after it starts")

    def audit_values(self) -> dict[str, Any]:
        values = asdict(self)
        values["open_weekdays"] = sorted(self.open_weekdays)
        values["service_start"] = self.service_start.strftime("%H:%M")
        values["service_end"] = self.service_end.strftime("%H:%M")
        return values


def _within(value: int, low: int, high: int, what: str) -> None:
    if type(value) is not int or not low <= value <= high:
        raise InvalidInput(f"{what} must be whole cents between {low} and {high}")


def _rows(session: Session, school_id: int) -> tuple[CanteenSettings, SchoolAlertSettings]:
    canteen = session.exec(
        select(CanteenSettings).where(CanteenSettings.school_id == school_id)
    ).first() or CanteenSettings(school_id=school_id)
    alerts = session.get(SchoolAlertSettings, school_id) or SchoolAlertSettings(
        school_id=school_id)
    return canteen, alerts


def current(session: Session, school_id: int) -> CanteenChoices:
    """The school's rules as saved, or the defaults the till uses when none are."""
    canteen, alerts = _rows(session, school_id)
    return CanteenChoices(
        default_price_cents=canteen.default_price_cents,
        prices_by_band=dict(canteen.prices_by_band),
        overdraft_floor_cents=canteen.overdraft_floor_cents,
        open_weekdays=frozenset(int(d) for d in canteen.open_weekdays),
        service_start=canteen.service_start,
        service_end=canteen.service_end,
        one_meal_per_day=canteen.one_meal_per_day,
        offline_allowance_cents=canteen.offline_allowance_cents,
        retap_window_seconds=canteen.retap_window_seconds,
        low_balance_alert_cents=alerts.low_balance_alert_cents,
    )


def save(*, session: Session, school_id: int, choices: CanteenChoices, actor_user_id: int,
         ip: str | None = None) -> dict[str, list[Any]]:
    """Store `choices`; returns {name: [before, after]} for what changed (audited)."""
    choices.check()
    before = current(session, school_id).audit_values()
    after = choices.audit_values()
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if not changes:
        return changes
    canteen, alerts = _rows(session, school_id)
    canteen.default_price_cents = choices.default_price_cents
    canteen.prices_by_band = dict(sorted(choices.prices_by_band.items()))
    canteen.overdraft_floor_cents = choices.overdraft_floor_cents
    canteen.open_weekdays = "".join(str(d) for d in sorted(choices.open_weekdays))
    canteen.service_start, canteen.service_end = choices.service_start, choices.service_end
    canteen.one_meal_per_day = choices.one_meal_per_day
    canteen.offline_allowance_cents = choices.offline_allowance_cents
    canteen.retap_window_seconds = choices.retap_window_seconds
    alerts.low_balance_alert_cents = choices.low_balance_alert_cents
    session.add(canteen)
    session.add(alerts)
    audit.record(session, action="canteen.settings", school_id=school_id,
                 actor_user_id=actor_user_id, target_type="school", target_id=school_id,
                 ip=ip, changes=changes)
    return changes
