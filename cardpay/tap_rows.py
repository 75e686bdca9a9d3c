"""The till's SQL, as Core statements built once: what one tap reads and writes.

A tap reads everything it decides on in one statement (`card_state`: the card, its
pupil, the account, the parents' settings, what the pupil ate today, the first tap of a
re-tap, an open low-balance alert), so that the write lock is held for a few statements
rather than twenty ORM round trips. The statements are module constants, compiled once
per database and run on the driver (`school.db.DriverStatement`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, exists, func, insert, or_, select, update

from cardpay.account_models import (
    DEFAULT_LOW_BALANCE_ALERT_CENTS,
    LowBalanceAlert,
    LunchSettings,
    SchoolAlertSettings,
)
from cardpay.models import Account, Card, CardKind, CardStatus, Tap
from school.clock import utc_from_db
from school.db import DriverStatement
from school.models import Pupil

_TAP = Tap.__table__  # type: ignore[attr-defined]
_CARD = Card.__table__  # type: ignore[attr-defined]
_PUPIL = Pupil.__table__  # type: ignore[attr-defined]
_ACCOUNT = Account.__table__  # type: ignore[attr-defined]
_LIMITS = LunchSettings.__table__  # type: ignore[attr-defined]
_SCHOOL_ALERTS = SchoolAlertSettings.__table__  # type: ignore[attr-defined]
_ALERT = LowBalanceAlert.__table__  # type: ignore[attr-defined]
_EARLIER = _TAP.alias("earlier")

_FIRST = _TAP.alias("first")
_PUPIL_ROW = (
    _PUPIL.c.id, _PUPIL.c.school_id, _PUPIL.c.first_name, _PUPIL.c.last_name,
    _PUPIL.c.classroom_id, _PUPIL.c.tariff_band, _PUPIL.c.photo_path, _PUPIL.c.allergies,
    _PUPIL.c.diet_notes,
)
# A recorded tap with the decision it carries: its own, or that of the tap it repeats.
_RECORDED = (
    select(
        _TAP.c.id, _TAP.c.device_id, _TAP.c.tap_id, _TAP.c.read_at, _TAP.c.repeat_of_id,
        _FIRST.c.accepted, _FIRST.c.reason, _FIRST.c.price_cents,
        _FIRST.c.balance_after_cents, _FIRST.c.decided_offline, _FIRST.c.alert,
        *_PUPIL_ROW,
    )
    .select_from(_TAP)
    .join(_FIRST, _FIRST.c.id == func.coalesce(_TAP.c.repeat_of_id, _TAP.c.id))
    .outerjoin(_PUPIL, _PUPIL.c.id == _FIRST.c.pupil_id)
)
_RECORDED_BY_TAP_ID = DriverStatement(_RECORDED.where(_TAP.c.tap_id == bindparam("tap_id")))
_RECORDED_BY_ID = DriverStatement(_RECORDED.where(_TAP.c.id == bindparam("id")))

# The pupil's meals on the tap's school day (what one-meal-a-day and the limit look at).
_EATEN_TODAY = (
    _EARLIER.c.pupil_id == _CARD.c.pupil_id,
    _EARLIER.c.accepted.is_(True),
    _EARLIER.c.repeat_of_id.is_(None),
    _EARLIER.c.read_at >= bindparam("day_start"),
    _EARLIER.c.read_at < bindparam("day_end"),
)
_SPENT = (
    select(func.coalesce(func.sum(_EARLIER.c.price_cents), 0))
    .where(*_EATEN_TODAY)
    .scalar_subquery()
)
_FIRST_MEAL = select(func.min(_EARLIER.c.read_at)).where(*_EATEN_TODAY).scalar_subquery()
# The first tap of this card at this till within the re-tap window (by the (card_uid,
# read_at) index). At another till it is another tray: a second meal, not a re-tap.
_RETAP_OF = (
    select(_EARLIER.c.id)
    .where(
        _EARLIER.c.card_uid == _CARD.c.uid,
        _EARLIER.c.card_id == _CARD.c.id,
        _EARLIER.c.device_id == bindparam("device_id"),
        _EARLIER.c.repeat_of_id.is_(None),
        _EARLIER.c.read_at > bindparam("retap_from"),
        _EARLIER.c.read_at <= bindparam("read_at"),
    )
    .order_by(_EARLIER.c.read_at.desc())
    .limit(1)
    .scalar_subquery()
)
_THRESHOLD = func.coalesce(
    _LIMITS.c.low_balance_alert_cents,
    select(_SCHOOL_ALERTS.c.low_balance_alert_cents)
    .where(_SCHOOL_ALERTS.c.school_id == _PUPIL.c.school_id)
    .scalar_subquery(),
    DEFAULT_LOW_BALANCE_ALERT_CENTS,
)
_OPEN_ALERT = exists().where(
    _ALERT.c.pupil_id == _CARD.c.pupil_id, _ALERT.c.rearmed_at.is_(None)
)
_CARD_STATE = DriverStatement(
    select(
        _CARD.c.id, _CARD.c.uid, _CARD.c.kind, _CARD.c.status, _CARD.c.key_version,
        *_PUPIL_ROW,
        _ACCOUNT.c.id, _ACCOUNT.c.balance_cents, _ACCOUNT.c.floor_cents,
        _LIMITS.c.daily_limit_cents, _THRESHOLD, _SPENT, _FIRST_MEAL, _RETAP_OF,
        _OPEN_ALERT, _ACCOUNT.c.closed_at.is_not(None),
    )
    .select_from(_CARD)
    .join(_PUPIL, _PUPIL.c.id == _CARD.c.pupil_id)
    .outerjoin(_ACCOUNT, _ACCOUNT.c.pupil_id == _PUPIL.c.id)
    .outerjoin(_LIMITS, _LIMITS.c.pupil_id == _PUPIL.c.id)
    # Within the till's school only: a card is known only to the tills of its own school.
    .where(_CARD.c.uid == bindparam("uid"), _PUPIL.c.school_id == bindparam("school_id"))
)
_CLAIM_COUNTER = DriverStatement(
    update(_CARD)
    .where(
        _CARD.c.id == bindparam("card_id"),
        or_(_CARD.c.last_sun_counter.is_(None), _CARD.c.last_sun_counter < bindparam("ctr")),
    )
    .values(last_sun_counter=bindparam("ctr"))
)
_COUNTER_USED = DriverStatement(
    select(_TAP.c.id)
    .where(_TAP.c.card_id == bindparam("card_id"), _TAP.c.sun_counter == bindparam("ctr"),
           _TAP.c.sun_key_version == bindparam("version"))
    .limit(1)
)
_LOCK_ACCOUNTS = (
    select(_ACCOUNT.c.id)
    .where(_ACCOUNT.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_ACCOUNT.c.id)
    .with_for_update()
)


@dataclass
class TapRecord:
    """A `tap` row being decided, inserted with Core (an ORM `Tap` costs more per tap than
    all the SQL). Its fields are the table's columns but `id`."""

    tap_id: str
    school_id: int
    device_id: int
    card_uid: str
    read_at: datetime
    received_at: datetime
    decided_offline: bool
    accepted: bool = False
    reason: str = ""
    card_id: int | None = None
    pupil_id: int | None = None
    price_cents: int = 0
    balance_after_cents: int | None = None
    repeat_of_id: int | None = None
    alert: str = ""
    sun_verified: bool = False
    sun_counter: int | None = None
    till_accepted: bool | None = None
    sun_key_version: int | None = None


# inline: no RETURNING of the new id on PostgreSQL, where nobody reads it.
_NEW_TAP = DriverStatement(insert(_TAP).inline(), keys=[f.name for f in fields(TapRecord)])


@dataclass(frozen=True)
class PupilRow:
    id: int
    school_id: int
    first_name: str
    last_name: str
    classroom_id: int | None
    tariff_band: str
    photo_path: str | None
    allergies: str
    diet_notes: str

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class RecordedTap:
    """A tap already recorded, as its verdict shows it: the decision (`accepted` to
    `alert`, `pupil`) is that of the tap it repeats, if it is a re-tap. Serves as both
    the tap and its first in `cardpay.verdicts.make_verdict`."""

    id: int
    device_id: int
    tap_id: str
    read_at: datetime
    repeat_of_id: int | None
    accepted: bool
    reason: str
    price_cents: int
    balance_after_cents: int | None
    decided_offline: bool
    alert: str
    pupil: PupilRow | None


@dataclass(frozen=True)
class CardState:
    """A card and all a tap of it is decided on, read in one statement under the lock."""

    card_id: int
    uid: str
    kind: CardKind
    status: CardStatus
    key_version: int | None  # NTAG 424 DNA: the keys it holds (None: never personalised here)
    pupil: PupilRow
    account_id: int | None
    balance_cents: int
    floor_cents: int | None
    daily_limit_cents: int | None
    alert_threshold_cents: int
    spent_today_cents: int
    first_meal_at: datetime | None
    retap_of: int | None
    open_alert: bool
    account_closed: bool  # the pupil has left (cardpay.leaving)


def recorded_tap(conn: Connection, tap_id: str) -> RecordedTap | None:
    """The tap recorded under this till tap id, or None."""
    return _recorded(_RECORDED_BY_TAP_ID.first(conn, {"tap_id": tap_id}))


def recorded_row(conn: Connection, row_id: int) -> RecordedTap:
    """The recorded tap with this row id."""
    found = _recorded(_RECORDED_BY_ID.first(conn, {"id": row_id}))
    assert found is not None, f"no tap {row_id}"
    return found


def _recorded(row: tuple[Any, ...] | None) -> RecordedTap | None:
    if row is None:
        return None
    (row_id, device_id, tap_id, read_at, repeat_of_id, accepted, reason, price,
     balance_after, offline, alert) = row[:11]
    read = utc_from_db(read_at)
    assert read is not None
    return RecordedTap(
        row_id, device_id, tap_id, read, repeat_of_id, bool(accepted), reason, price,
        balance_after, bool(offline), alert,
        None if row[11] is None else PupilRow(*row[11:]),
    )


def card_state(
    conn: Connection,
    uid: str,
    *,
    school_id: int,
    device_id: int,
    read_at: datetime,
    day: tuple[datetime, datetime],
    retap_from: datetime,
) -> CardState | None:
    """The card with this UID, of a pupil of `school_id`, and the pupil's state at
    `read_at`; None for no such card in that school (another school's card included)."""
    params = {
        "uid": uid, "school_id": school_id, "device_id": device_id,
        "day_start": day[0], "day_end": day[1],
        "retap_from": retap_from, "read_at": read_at,
    }
    row = _CARD_STATE.first(conn, params)
    if row is None:
        return None
    (card_id, card_uid, kind, status, key_version, *pupil, account_id, balance, floor, limit,
     threshold, spent, first_meal, retap_of, open_alert, closed) = row
    return CardState(
        card_id, card_uid, CardKind(kind), CardStatus(status), key_version, PupilRow(*pupil),
        account_id,
        balance or 0, floor, limit, int(threshold), int(spent), utc_from_db(first_meal), retap_of,
        bool(open_alert), bool(closed),
    )


def claim_counter(conn: Connection, card_id: int, counter: int) -> bool:
    """Record `counter` as the card's last SUN read if it is greater than the last one:
    one compare-and-set, so that two taps racing cannot both win."""
    return _CLAIM_COUNTER.rowcount(conn, {"card_id": card_id, "ctr": counter}) == 1


def counter_used(conn: Connection, card_id: int, version: int, counter: int) -> bool:
    """True when a recorded tap of the card used this SUN read counter already, under the
    same key version."""
    params = {"card_id": card_id, "ctr": counter, "version": version}
    return _COUNTER_USED.first(conn, params) is not None


def lock_accounts(conn: Connection, account_ids: list[int]) -> None:
    """Hold these accounts' rows until commit, in id order (PostgreSQL; SQLite's write
    lock already serialises every writer)."""
    conn.execute(_LOCK_ACCOUNTS, {"ids": sorted(account_ids)}).all()


def insert_tap(conn: Connection, tap: TapRecord) -> None:
    _NEW_TAP.rowcount(conn, vars(tap))
