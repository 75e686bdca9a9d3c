"""The till service: a tap in, a verdict out, the meal charged once.

Every tap is recorded with its verdict under the till's tap id, so a till that retries
gets the first verdict, whatever happened in between. The order of checks:
the tap id (a retry), the card (genuine, known, active), a re-tap of the same card within
seconds (the first verdict again, no charge), then the canteen's rules. A tap the till
decided offline is charged as it was decided: the meal was served.

Each tap is one database transaction, holding SQLite's write lock (or the pupil's account
row on PostgreSQL) from the first read to the commit, so two tills deciding for the same
pupil decide one after the other. The verdict is built before the commit, so nothing is
read after it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from cardpay import alerts, canteen, cards
from cardpay.account_models import LunchSettings
from cardpay.accounts import pupil_account, school_account
from cardpay.errors import (
    CardPayError,
    InsufficientFundsError,
    SunForgedError,
    SunRefusedError,
    SunReplayedError,
    TapConflictError,
    TapRejectedError,
    UnknownGenuineCardError,
)
from cardpay.ledger import post
from cardpay.models import Account, AccountKind, Card, CardStatus, Tap, TransactionKind
from cardpay.rules import CanteenRules, Decision, PupilState, Reason, decide, school_day
from cardpay.sun import Keyring, SunMessage
from cardpay.verdicts import SchoolFacts, Verdict, make_verdict, verdict_of
from school import audit
from school.clock import Clock, utcnow
from school.db import immediate_session
from school.models import Classroom, Device, Pupil, School

logger = logging.getLogger(__name__)

MAX_CLOCK_SKEW = timedelta(minutes=2)
MAX_OFFLINE_AGE = timedelta(days=14)
# A school's rules are read again at most this often: a change reaches the tills within
# seconds, and a tap does not pay for reading them each time.
RULES_TTL_S = 5.0

_ALERTS = {
    Reason.CARD_LOST: "a card reported lost was presented",
    Reason.CARD_BLOCKED: "a blocked card was presented",
    Reason.CARD_NOT_GENUINE: "a card failed its authenticity check (forged or copied)",
    Reason.REPLAYED: "a card's signed message was replayed (copied card?)",
}


@dataclass(frozen=True)
class TapRequest:
    """What a till sends: its tap id, when the card was read, and what the card said."""

    tap_id: str
    read_at: datetime
    uid: str
    sun_url: str | None = None
    # The till's own verdict when it decided offline; None for a live tap.
    offline_accepted: bool | None = None


@dataclass(frozen=True)
class _Canteen:
    """A school's rules and the facts a tap needs, as read at `loaded`."""

    school_id: int
    facts: SchoolFacts
    rules: CanteenRules
    retap: timedelta
    revenue_id: int
    rooms: dict[int, str]
    loaded: float


@dataclass
class _Tap:
    """One tap being decided: its record, its school, and what is known so far."""

    record: Tap
    canteen: _Canteen
    pupil: Pupil | None = None


class Till:
    """Decides taps for one deployment; keeps nothing but a few seconds of rules."""

    def __init__(self, *, engine: Engine, keyring: Keyring, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._keyring = keyring
        self._clock = clock
        self._canteens: dict[int, _Canteen] = {}
        self._lock = threading.Lock()

    def tap(self, device: Device, request: TapRequest) -> Verdict:
        now = self._clock()
        _check_time(request, now)
        try:
            with immediate_session(self._engine, expire_on_commit=False) as session:
                return self._decide(session, device, request, now)
        except IntegrityError:
            # The same tap id from a concurrent retry committed first: answer as it was.
            logger.info("tap %s raced with its own retry; answering the first", request.tap_id)
        with Session(self._engine) as session:
            existing = _existing(session, device, request.tap_id)
            if existing is None:
                raise TapRejectedError("the tap could not be recorded; send it again")
            return verdict_of(session, existing)

    def _decide(
        self, session: Session, device: Device, request: TapRequest, now: datetime
    ) -> Verdict:
        existing = _existing(session, device, request.tap_id)
        if existing is not None:
            return verdict_of(session, existing)
        assert device.id is not None
        tap = _Tap(
            Tap(
                tap_id=request.tap_id,
                school_id=device.school_id,
                device_id=device.id,
                card_uid=_uid_or_blank(request.uid),
                read_at=request.read_at,
                received_at=now,
                decided_offline=request.offline_accepted is not None,
                accepted=False,
                reason="",
            ),
            self._canteen(session, device.school_id),
        )
        try:
            card = self._identify(session, request)
        except UnknownGenuineCardError as exc:
            tap.record.card_uid, tap.record.sun_verified = exc.uid.hex().upper(), True
            return _refuse(session, tap, Reason.UNKNOWN_CARD)
        except CardPayError as exc:
            return _refuse(session, tap, _reason_for(exc))
        tap.record.card_uid, tap.record.card_id = card.uid, card.id
        tap.record.pupil_id = card.pupil_id
        tap.pupil = session.get(Pupil, card.pupil_id)
        tap.record.sun_verified = bool(request.sun_url)  # identify_sun checked it, or raised
        if card.status is CardStatus.RETIRED and _closed(session, card.pupil_id):
            return _refuse(session, tap, Reason.ACCOUNT_CLOSED)  # the pupil has left
        if card.status is not CardStatus.ACTIVE:
            return _refuse(session, tap, Reason(f"card_{card.status.value}"))
        first = _first_of_retap(session, card, request.read_at, tap.canteen.retap)
        if first is not None:
            return _repeat(session, tap, first)
        return _charge(session, tap, request, device)

    def _identify(self, session: Session, request: TapRequest) -> Card:
        if request.sun_url:
            message = SunMessage.from_url(request.sun_url)
            return cards.identify_sun(session=session, message=message, keyring=self._keyring)
        return cards.identify_uid(session, request.uid)

    def _canteen(self, session: Session, school_id: int) -> _Canteen:
        with self._lock:
            cached = self._canteens.get(school_id)
        if cached is not None and time.monotonic() - cached.loaded < RULES_TTL_S:
            return cached
        school = session.get(School, school_id)
        assert school is not None
        revenue = school_account(
            session=session, school_id=school_id, kind=AccountKind.MEAL_REVENUE
        )
        rooms = dict(
            session.exec(
                select(Classroom.id, Classroom.name).where(Classroom.school_id == school_id)
            ).all()
        )
        assert revenue.id is not None
        fresh = _Canteen(
            school_id,
            SchoolFacts.of(school),
            canteen.rules_for(session, school),
            canteen.retap_window(session, school_id),
            revenue.id,
            {k: v for k, v in rooms.items() if k is not None},
            time.monotonic(),
        )
        with self._lock:
            self._canteens[school_id] = fresh
        return fresh


def _check_time(request: TapRequest, now: datetime) -> None:
    if request.read_at.tzinfo is None:
        raise TapRejectedError("read_at must carry its time zone")
    if request.read_at > now + MAX_CLOCK_SKEW:
        raise TapRejectedError("read_at is in the future: check the till's clock")
    if request.read_at < now - MAX_OFFLINE_AGE:
        raise TapRejectedError("read_at is too old to be a tap still to be charged")
    if not request.uid and not request.sun_url:
        raise TapRejectedError("the tap carries no card data")


def _uid_or_blank(uid: str) -> str:
    try:
        return cards.normalise_uid(uid)
    except CardPayError:
        return ""


def _existing(session: Session, device: Device, tap_id: str) -> Tap | None:
    tap = session.exec(select(Tap).where(Tap.tap_id == tap_id)).first()
    if tap is not None and tap.device_id != device.id:
        raise TapConflictError("this tap id was already sent by another till")
    return tap


def _closed(session: Session, pupil_id: int) -> bool:
    closed_at = session.exec(
        select(Account.closed_at).where(Account.pupil_id == pupil_id)
    ).first()
    return closed_at is not None


def _reason_for(exc: CardPayError) -> Reason:
    if isinstance(exc, SunReplayedError):
        return Reason.REPLAYED
    if isinstance(exc, SunForgedError | SunRefusedError):
        return Reason.CARD_NOT_GENUINE
    return Reason.UNKNOWN_CARD


def _verdict(tap: _Tap, decision: Decision, first: Tap | None = None) -> Verdict:
    pupil = tap.pupil
    room = tap.canteen.rooms.get(pupil.classroom_id or 0, "") if pupil else ""
    return make_verdict(tap.record, first or tap.record, tap.canteen.facts, pupil, room, decision)


def _refuse(
    session: Session, tap: _Tap, reason: Reason, decision: Decision | None = None
) -> Verdict:
    record = tap.record
    record.accepted, record.reason, record.price_cents = False, reason.value, 0
    record.balance_after_cents = None
    record.alert = _ALERTS.get(reason, "")
    verdict = _verdict(tap, decision or Decision(accepted=False, reason=reason))
    session.add(record)
    if record.alert:
        _audit_alert(session, record)
    session.commit()
    return verdict


def _audit_alert(session: Session, tap: Tap) -> None:
    audit.record(
        session,
        action="tap.alert",
        school_id=tap.school_id,
        actor_device_id=tap.device_id,
        target_type="card",
        target_id=tap.card_id or "",
        alert=tap.alert,
        tap_id=tap.tap_id,
        uid=cards.mask_uid(tap.card_uid) if tap.card_uid else "",
    )


def _first_of_retap(
    session: Session, card: Card, read_at: datetime, window: timedelta
) -> Tap | None:
    return session.exec(
        select(Tap)
        .where(
            Tap.card_id == card.id,
            col(Tap.repeat_of_id).is_(None),
            col(Tap.read_at) > read_at - window,
            col(Tap.read_at) <= read_at,
        )
        .order_by(col(Tap.read_at).desc())
    ).first()


def _repeat(session: Session, tap: _Tap, first: Tap) -> Verdict:
    record = tap.record
    record.repeat_of_id = first.id
    record.accepted, record.reason = first.accepted, first.reason
    record.balance_after_cents = first.balance_after_cents
    verdict = verdict_of(session, record)
    session.add(record)
    session.commit()
    return verdict


def _pupil_state(
    session: Session, rules: CanteenRules, pupil: Pupil, account: Account, read_at: datetime
) -> PupilState:
    day = canteen.pupil_day(
        session, pupil.id or 0, canteen.day_bounds(rules, school_day(rules, read_at))
    )
    parents = session.get(LunchSettings, pupil.id)
    return PupilState(
        card_status=CardStatus.ACTIVE,
        tariff_band=pupil.tariff_band,
        balance_cents=account.balance_cents,
        daily_limit_cents=parents.daily_limit_cents if parents else None,
        spent_today_cents=day.spent_cents,
        first_meal_today_at=day.first_meal_at,
        floor_cents=canteen.floor_of(account, rules),
    )


def _charge(session: Session, tap: _Tap, request: TapRequest, device: Device) -> Verdict:
    rules, pupil = tap.canteen.rules, tap.pupil
    assert pupil is not None
    account = canteen.lock(
        session,
        pupil_account(session=session, pupil=pupil, floor_cents=rules.overdraft_floor_cents),
    )
    if account.closed_at is not None:
        return _refuse(session, tap, Reason.ACCOUNT_CLOSED)
    decision = decide(
        rules, _pupil_state(session, rules, pupil, account, request.read_at), request.read_at
    )
    if request.offline_accepted is None:
        if not decision.accepted:
            return _refuse(session, tap, decision.reason, decision)
        return _post_meal(session, tap, account, decision, device, offline=False)
    if not request.offline_accepted:
        reason = decision.reason if not decision.accepted else Reason.OFFLINE_ALLOWANCE
        return _refuse(session, tap, reason)
    served = Decision(
        accepted=True, reason=Reason.OK, price_cents=rules.price_for(pupil.tariff_band)
    )
    if not decision.accepted:
        tap.record.alert = f"served offline although: {decision.message('en', rules.timezone)}"
    return _post_meal(session, tap, account, served, device, offline=True)


def _post_meal(
    session: Session,
    tap: _Tap,
    account: Account,
    decision: Decision,
    device: Device,
    *,
    offline: bool,
) -> Verdict:
    record, price = tap.record, decision.price_cents
    record.accepted, record.reason, record.price_cents = True, decision.reason.value, price
    record.balance_after_cents = account.balance_cents - price
    verdict = _verdict(tap, decision)
    session.add(record)
    if record.alert:
        _audit_alert(session, record)
    if price == 0:
        session.commit()
        return verdict
    # Queued with the meal: committed with it, or gone with it if the tap is refused.
    alerts.after_debit(
        session,
        pupil_id=record.pupil_id or 0,
        new_balance_cents=record.balance_after_cents,
        clock=lambda: record.received_at,
    )
    revenue = session.get(Account, tap.canteen.revenue_id)
    assert revenue is not None
    try:
        posted = post(
            session=session,
            school_id=record.school_id,
            kind=TransactionKind.MEAL,
            client_id=f"tap:{record.tap_id}",
            legs=[(account, -price), (revenue, price)],
            actor_device_id=device.id,
            occurred_at=record.read_at,
            enforce_floors=not offline,
            memo=f"meal, {device.name}",
        )
    except InsufficientFundsError:
        # The rules read the balance under the same lock, so this means the account's
        # floor and the rules disagree: refuse rather than charge.
        return _refuse(session, tap, Reason.INSUFFICIENT_FUNDS)
    if posted.replayed:
        # A copy of this tap (a till's retry on another connection) was charged while we
        # waited for the lock; ours was rolled back: answer with the copy's verdict.
        first = session.exec(select(Tap).where(Tap.tap_id == record.tap_id)).one()
        return verdict_of(session, first)
    return verdict
