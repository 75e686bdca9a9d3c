"""Canteen rules, decided in the school's time zone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardpay.rules import (
    CanteenRules,
    CardStatus,
    PupilState,
    Reason,
    decide,
    decide_offline,
    school_day,
)

RULES = CanteenRules(
    prices_by_band={"T1": 80, "T5": 450, "FREE": 0},
    default_price_cents=350,
    closed_days=frozenset({date(2026, 11, 26)}),
)
TUESDAY_NOON = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)  # 12:00 in Paris
PUPIL = PupilState(card_status=CardStatus.ACTIVE, tariff_band="T5", balance_cents=1000)


def test_a_pupil_with_money_eats_at_their_band_price() -> None:
    decision = decide(RULES, PUPIL, TUESDAY_NOON)
    assert (decision.accepted, decision.price_cents) == (True, 450)
    assert decide(RULES, replace(PUPIL, tariff_band="T1"), TUESDAY_NOON).price_cents == 80
    assert decide(RULES, replace(PUPIL, tariff_band="??"), TUESDAY_NOON).price_cents == 350


def test_free_meals_need_no_balance_even_in_debt() -> None:
    decision = decide(RULES, replace(PUPIL, tariff_band="FREE", balance_cents=-900), TUESDAY_NOON)
    assert (decision.accepted, decision.price_cents) == (True, 0)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (CardStatus.LOST, Reason.CARD_LOST),
        (CardStatus.BLOCKED, Reason.CARD_BLOCKED),
        (CardStatus.RETIRED, Reason.CARD_RETIRED),
    ],
)
def test_cards_not_active_are_refused(status: CardStatus, reason: Reason) -> None:
    decision = decide(RULES, replace(PUPIL, card_status=status), TUESDAY_NOON)
    assert (decision.accepted, decision.reason) == (False, reason)


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        (datetime(2026, 11, 25, 11, 0, tzinfo=UTC), Reason.CLOSED_DAY),  # a Wednesday
        (datetime(2026, 11, 26, 11, 0, tzinfo=UTC), Reason.CLOSED_DAY),  # a closed Thursday
        (datetime(2026, 11, 24, 9, 59, tzinfo=UTC), Reason.OUTSIDE_SERVICE),  # 10:59 Paris
        (datetime(2026, 11, 24, 13, 31, tzinfo=UTC), Reason.OUTSIDE_SERVICE),  # 14:31 Paris
    ],
)
def test_calendar_and_service_hours_in_the_school_time_zone(at: datetime, reason: Reason) -> None:
    assert decide(RULES, PUPIL, at).reason is reason


def test_service_hours_follow_summer_time() -> None:
    june = datetime(2026, 6, 2, 9, 30, tzinfo=UTC)  # 11:30 in Paris (UTC+2)
    assert decide(RULES, PUPIL, june).accepted


def test_second_meal_is_refused_with_the_time_of_the_first() -> None:
    first = datetime(2026, 11, 24, 11, 5, tzinfo=UTC)
    decision = decide(RULES, replace(PUPIL, first_meal_today_at=first), TUESDAY_NOON)
    assert decision.reason is Reason.ALREADY_EATEN
    assert decision.message("fr", RULES.timezone) == "Déjà servi aujourd'hui à 12:05"
    assert decision.message("en", RULES.timezone) == "Already served today at 12:05"


def test_parents_daily_limit() -> None:
    limited = replace(PUPIL, daily_limit_cents=500, spent_today_cents=100)
    assert decide(RULES, limited, TUESDAY_NOON).reason is Reason.DAILY_LIMIT
    assert decide(RULES, replace(limited, spent_today_cents=50), TUESDAY_NOON).accepted


def test_overdraft_floor() -> None:
    short = replace(PUPIL, balance_cents=400)
    assert decide(RULES, short, TUESDAY_NOON).reason is Reason.INSUFFICIENT_FUNDS
    lenient = replace(RULES, overdraft_floor_cents=-100)
    assert decide(lenient, short, TUESDAY_NOON).accepted
    assert not decide(lenient, replace(short, balance_cents=349), TUESDAY_NOON).accepted


def test_offline_allowance_caps_what_a_till_grants_alone() -> None:
    kw = {"allowance_cents": 700}
    assert decide_offline(RULES, PUPIL, TUESDAY_NOON, spent_offline_cents=0, **kw).accepted
    refused = decide_offline(RULES, PUPIL, TUESDAY_NOON, spent_offline_cents=300, **kw)
    assert refused.reason is Reason.OFFLINE_ALLOWANCE


def test_rules_refuse_float_prices_and_a_positive_floor() -> None:
    with pytest.raises(ValueError, match="int of cents"):
        CanteenRules(prices_by_band={"T1": 0.8})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="floor"):
        CanteenRules(overdraft_floor_cents=100)


def test_school_day_is_local() -> None:
    late = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)  # already Wednesday in Paris
    assert school_day(RULES, late) == date(2026, 11, 25)


@given(
    balance=st.integers(-5000, 5000),
    band=st.sampled_from(["T1", "T5", "FREE", "X"]),
    floor=st.integers(-2000, 0),
)
def test_an_accepted_meal_never_takes_the_balance_below_the_floor(
    balance: int, band: str, floor: int
) -> None:
    rules = replace(RULES, overdraft_floor_cents=floor)
    decision = decide(rules, replace(PUPIL, balance_cents=balance, tariff_band=band), TUESDAY_NOON)
    if decision.accepted:
        assert decision.price_cents == 0 or balance - decision.price_cents >= floor
    else:
        assert decision.reason is Reason.INSUFFICIENT_FUNDS
