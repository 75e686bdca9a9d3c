"""Reading the school settings form: euros typed as text become integer cents (through
`cardpay.money.parse_amount`, hence `Decimal`), times become `time`, and every field that
cannot be read gets its own message key, so the page can show all of them at once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time

from cardpay import canteen_admin
from cardpay.canteen_admin import CanteenChoices
from cardpay.errors import InvalidAmountError
from cardpay.money import decimal_string, parse_amount

_HH_MM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


@dataclass
class CanteenForm:
    """The fields as typed, so that a refused form is shown again as the admin left it."""

    timezone: str = ""
    default_price: str = ""
    bands: list[tuple[str, str]] = field(default_factory=list)
    overdraft: str = ""
    offline_allowance: str = ""
    low_balance_alert: str = ""
    retap_seconds: str = ""
    weekdays: list[str] = field(default_factory=list)
    service_start: str = ""
    service_end: str = ""
    one_meal_per_day: bool = False

    @classmethod
    def of(cls, timezone: str, choices: CanteenChoices) -> CanteenForm:
        return cls(
            timezone=timezone,
            default_price=decimal_string(choices.default_price_cents),
            bands=[(b, decimal_string(c)) for b, c in sorted(choices.prices_by_band.items())],
            overdraft=decimal_string(-choices.overdraft_floor_cents),
            offline_allowance=decimal_string(choices.offline_allowance_cents),
            low_balance_alert=decimal_string(choices.low_balance_alert_cents),
            retap_seconds=str(choices.retap_window_seconds),
            weekdays=[str(d) for d in sorted(choices.open_weekdays)],
            service_start=choices.service_start.strftime("%H:%M"),
            service_end=choices.service_end.strftime("%H:%M"),
            one_meal_per_day=choices.one_meal_per_day,
        )


class _Reader:
    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def cents(self, name: str, text: str, max_cents: int) -> int:
        try:
            return parse_amount(text, max_cents=max_cents, min_cents=0)
        except InvalidAmountError as exc:
            self.errors[name] = f"money.error.{exc.code}"
            return 0

    def clock_time(self, name: str, text: str) -> time:
        match = _HH_MM.fullmatch(text.strip())
        if match is None:
            self.errors[name] = "admin.settings.error.time"
            return time(0)
        return time(int(match[1]), int(match[2]))

    def bands(self, rows: list[tuple[str, str]]) -> dict[str, int]:
        prices: dict[str, int] = {}
        for index, (band, price) in enumerate(rows):
            band = band.strip()
            if not band and not price.strip():
                continue  # the empty row for a new band
            if not canteen_admin.BAND_NAME.match(band) or band in prices:
                self.errors[f"band-{index}"] = "admin.settings.error.band"
            elif price.strip():  # an empty price: the band pays the default price
                prices[band] = self.cents(f"band-{index}", price, canteen_admin.MAX_PRICE_CENTS)
        return prices


def read(form: CanteenForm) -> tuple[CanteenChoices | None, dict[str, str]]:
    """The choices in the form, or None with {field: message key} for each bad field."""
    r = _Reader()
    weekdays = set()
    for value in form.weekdays:
        if value not in {str(d) for d in range(7)}:
            r.errors["weekdays"] = "admin.settings.error.weekday"
        else:
            weekdays.add(int(value))
    retap = form.retap_seconds.strip()
    if not retap.isdigit() or int(retap) > canteen_admin.MAX_RETAP_SECONDS:
        r.errors["retap_seconds"] = "admin.settings.error.retap"
    choices = CanteenChoices(
        default_price_cents=r.cents("default_price", form.default_price,
                                    canteen_admin.MAX_PRICE_CENTS),
        prices_by_band=r.bands(form.bands),
        overdraft_floor_cents=-r.cents("overdraft", form.overdraft,
                                       canteen_admin.MAX_OVERDRAFT_CENTS),
        open_weekdays=frozenset(weekdays),
        service_start=r.clock_time("service_start", form.service_start),
        service_end=r.clock_time("service_end", form.service_end),
        one_meal_per_day=form.one_meal_per_day,
        offline_allowance_cents=r.cents("offline_allowance", form.offline_allowance,
                                        canteen_admin.MAX_OFFLINE_CENTS),
        retap_window_seconds=int(retap) if "retap_seconds" not in r.errors else 0,
        low_balance_alert_cents=r.cents("low_balance_alert", form.low_balance_alert,
                                        canteen_admin.MAX_ALERT_CENTS),
    )
    if "service_start" not in r.errors and "service_end" not in r.errors and (
        choices.service_start >= choices.service_end
    ):
        r.errors["service_end"] = "admin.settings.error.service"
    return (None, r.errors) if r.errors else (choices, r.errors)
