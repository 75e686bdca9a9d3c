"""The canteen's rules: may this pupil eat now, and at what price? Pure functions.

Everything a decision depends on is passed in (the school's rules, the pupil's state,
the time), so the till service, the offline daemon and the tests decide alike.
'Today' is the school's day, in the school's time zone.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from cardpay.statuses import CardStatus


class Reason(enum.StrEnum):
    OK = "ok"
    UNKNOWN_CARD = "unknown_card"
    CARD_LOST = "card_lost"
    CARD_BLOCKED = "card_blocked"
    CARD_RETIRED = "card_retired"
    CLOSED_DAY = "closed_day"
    OUTSIDE_SERVICE = "outside_service"
    ALREADY_EATEN = "already_eaten"
    DAILY_LIMIT = "daily_limit"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    OFFLINE_ALLOWANCE = "offline_allowance"
    CARD_NOT_GENUINE = "card_not_genuine"
    REPLAYED = "replayed"
    ACCOUNT_CLOSED = "account_closed"
    TILL_REFUSED = "till_refused"  # the server had accepted, too late: the till's word stands


# Words a cashier understands at a glance; {first} is the time of the first meal.
MESSAGES: dict[str, dict[Reason, str]] = {
    "fr": {
        Reason.OK: "Bon appétit",
        Reason.UNKNOWN_CARD: "Carte inconnue ici",
        Reason.CARD_LOST: "Carte déclarée perdue",
        Reason.CARD_BLOCKED: "Carte bloquée",
        Reason.CARD_RETIRED: "Carte remplacée",
        Reason.CLOSED_DAY: "Cantine fermée aujourd'hui",
        Reason.OUTSIDE_SERVICE: "En dehors des heures de service",
        Reason.ALREADY_EATEN: "Déjà servi aujourd'hui à {first}",
        Reason.DAILY_LIMIT: "Limite journalière fixée par les parents atteinte",
        Reason.INSUFFICIENT_FUNDS: "Solde insuffisant",
        Reason.OFFLINE_ALLOWANCE: "Hors ligne : avance épuisée",
        Reason.CARD_NOT_GENUINE: "Carte non authentique",
        Reason.REPLAYED: "Lecture rejouée : carte copiée ?",
        Reason.ACCOUNT_CLOSED: "Compte fermé : l'élève a quitté l'école",
        Reason.TILL_REFUSED: "Refusé à la caisse (hors ligne)",
    },
    "en": {
        Reason.OK: "Enjoy your meal",
        Reason.UNKNOWN_CARD: "Card not known here",
        Reason.CARD_LOST: "Card reported lost",
        Reason.CARD_BLOCKED: "Card blocked",
        Reason.CARD_RETIRED: "Card replaced",
        Reason.CLOSED_DAY: "Canteen closed today",
        Reason.OUTSIDE_SERVICE: "Outside serving hours",
        Reason.ALREADY_EATEN: "Already served today at {first}",
        Reason.DAILY_LIMIT: "Parents' daily limit reached",
        Reason.INSUFFICIENT_FUNDS: "Not enough money on the account",
        Reason.OFFLINE_ALLOWANCE: "Offline: allowance used up",
        Reason.CARD_NOT_GENUINE: "Card is not genuine",
        Reason.REPLAYED: "Replayed read: copied card?",
        Reason.ACCOUNT_CLOSED: "Account closed: the pupil has left the school",
        Reason.TILL_REFUSED: "Refused at the till (offline)",
    },
}


_CARD_REFUSALS = {
    CardStatus.LOST: Reason.CARD_LOST,
    CardStatus.BLOCKED: Reason.CARD_BLOCKED,
    CardStatus.RETIRED: Reason.CARD_RETIRED,
}


@dataclass(frozen=True)
class CanteenRules:
    """One school's rules. Prices in integer cents by tariff band; a band priced 0 eats free."""

    timezone: str = "Europe/Paris"
    prices_by_band: Mapping[str, int] = field(default_factory=dict)
    default_price_cents: int = 350
    # Allow a balance down to this floor (0: no overdraft; -1000: up to 10 € owed).
    overdraft_floor_cents: int = 0
    open_weekdays: frozenset[int] = frozenset({0, 1, 3, 4})  # Mon, Tue, Thu, Fri
    closed_days: frozenset[date] = frozenset()
    service_start: time = time(11, 0)
    service_end: time = time(14, 30)
    one_meal_per_day: bool = True
    # What a till may let a pupil spend on its own while the server is unreachable.
    offline_allowance_cents: int = 700

    def __post_init__(self) -> None:
        for band, price in {**self.prices_by_band, "": self.default_price_cents}.items():
            if type(price) is not int or price < 0:
                raise ValueError(f"price for band {band!r} must be a non-negative int of cents")
        if type(self.overdraft_floor_cents) is not int or self.overdraft_floor_cents > 0:
            raise ValueError("the overdraft floor is an int of cents, zero or below")

    def price_for(self, band: str) -> int:
        return self.prices_by_band.get(band, self.default_price_cents)

    def local(self, at: datetime) -> datetime:
        return at.astimezone(ZoneInfo(self.timezone))


@dataclass(frozen=True)
class PupilState:
    """What the till knows of a pupil at the moment of the tap."""

    card_status: CardStatus
    tariff_band: str
    balance_cents: int
    daily_limit_cents: int | None = None  # set by a parent
    spent_today_cents: int = 0
    first_meal_today_at: datetime | None = None
    # The pupil's own account floor, when it differs from the school's.
    floor_cents: int | None = None


@dataclass(frozen=True)
class Decision:
    accepted: bool
    reason: Reason
    price_cents: int = 0
    first_meal_at: datetime | None = None

    @classmethod
    def recorded(cls, accepted: bool, reason: str,
                 first_meal_at: datetime | None = None) -> Decision:
        """The decision a recorded tap carries, from its row (an empty reason reads as an
        unknown card)."""
        return cls(accepted=accepted, reason=Reason(reason or Reason.UNKNOWN_CARD),
                   first_meal_at=first_meal_at)

    def message(self, locale: str, timezone: str) -> str:
        text = MESSAGES.get(locale, MESSAGES["en"])[self.reason]
        first = self.first_meal_at.astimezone(ZoneInfo(timezone)) if self.first_meal_at else None
        return text.format(first=f"{first:%H:%M}" if first else "")


def _refuse(reason: Reason, first_meal_at: datetime | None = None) -> Decision:
    return Decision(accepted=False, reason=reason, first_meal_at=first_meal_at)


def _calendar(rules: CanteenRules, at: datetime) -> Reason | None:
    local = rules.local(at)
    if local.weekday() not in rules.open_weekdays or local.date() in rules.closed_days:
        return Reason.CLOSED_DAY
    if not rules.service_start <= local.time() <= rules.service_end:
        return Reason.OUTSIDE_SERVICE
    return None


def decide(rules: CanteenRules, pupil: PupilState, at: datetime) -> Decision:
    """Decide a tap online: the card, the calendar, one meal a day, the parent's daily
    limit, then the balance against the overdraft floor."""
    if pupil.card_status is not CardStatus.ACTIVE:
        return _refuse(_CARD_REFUSALS[pupil.card_status])
    closed = _calendar(rules, at)
    if closed is not None:
        return _refuse(closed)
    if rules.one_meal_per_day and pupil.first_meal_today_at is not None:
        return _refuse(Reason.ALREADY_EATEN, first_meal_at=pupil.first_meal_today_at)
    price = rules.price_for(pupil.tariff_band)
    if pupil.daily_limit_cents is not None and (
        pupil.spent_today_cents + price > pupil.daily_limit_cents
    ):
        return _refuse(Reason.DAILY_LIMIT)
    # A free meal is never refused for an old debt: it adds nothing to it.
    floor = rules.overdraft_floor_cents if pupil.floor_cents is None else pupil.floor_cents
    if price > 0 and pupil.balance_cents - price < floor:
        return _refuse(Reason.INSUFFICIENT_FUNDS)
    return Decision(accepted=True, reason=Reason.OK, price_cents=price)


def decide_offline(
    rules: CanteenRules,
    pupil: PupilState,
    at: datetime,
    *,
    spent_offline_cents: int,
    allowance_cents: int,
) -> Decision:
    """Decide a tap from a till's cached snapshot: the same rules on the cached state (its
    balance already lowered by what was spent offline), and never more than the pupil's
    offline allowance spent before the server has seen it."""
    decision = decide(rules, pupil, at)
    if not decision.accepted:
        return decision
    if spent_offline_cents + decision.price_cents > allowance_cents:
        return _refuse(Reason.OFFLINE_ALLOWANCE)
    return decision


def school_day(rules: CanteenRules, at: datetime) -> date:
    """The school's calendar date at `at` (what 'today' means for one meal a day)."""
    return rules.local(at).date()
