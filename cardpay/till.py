"""The till service: a tap in, a verdict out, the meal charged once.

Every tap is recorded with its verdict under the till's tap id, so a till that retries
gets the first verdict, whatever happened in between. The order of checks:
the tap id (a retry), the card (genuine, known, active), a re-tap of the same card within
seconds (the first verdict again, no charge), then the canteen's rules. A tap the till
decided offline is charged as it was decided: the meal was served.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from cardpay import canteen, cards
from cardpay.accounts import pupil_account, school_account
from cardpay.errors import (
    CardPayError,
    InsufficientFundsError,
    SunForgedError,
    SunRefusedError,
    SunReplayedError,
    TapConflictError,
    TapRejectedError,
    UnknownCardError,
    UnknownGenuineCardError,
)
from cardpay.ledger import post
from cardpay.models import Account, AccountKind, Card, CardStatus, Tap, TransactionKind
from cardpay.rules import CanteenRules, Decision, PupilState, Reason, decide, school_day
from cardpay.sun import Keyring, SunMessage
from cardpay.verdicts import Verdict, verdict_of
from school import audit
from school.clock import Clock, utcnow
from school.db import immediate_session
from school.models import Device, Pupil, School

logger = logging.getLogger(__name__)

MAX_CLOCK_SKEW = timedelta(minutes=2)
MAX_OFFLINE_AGE = timedelta(days=14)

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


class Till:
    """Decides taps for one deployment; stateless apart from its collaborators."""

    def __init__(self, *, engine: Engine, keyring: Keyring, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._keyring = keyring
        self._clock = clock

    def tap(self, device: Device, request: TapRequest) -> Verdict:
        now = self._clock()
        _check_time(request, now)
        try:
            with immediate_session(self._engine) as session:
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
        school = session.get(School, device.school_id)
        assert school is not None
        assert school.id is not None
        assert device.id is not None
        tap = Tap(
            tap_id=request.tap_id,
            school_id=school.id,
            device_id=device.id,
            card_uid=_uid_or_blank(request.uid),
            read_at=request.read_at,
            received_at=now,
            decided_offline=request.offline_accepted is not None,
            accepted=False,
            reason="",
        )
        try:
            card = self._identify(session, request)
        except UnknownGenuineCardError as exc:
            tap.card_uid, tap.sun_verified = exc.uid.hex().upper(), True
            return _refuse(session, tap, Reason.UNKNOWN_CARD)
        except CardPayError as exc:
            return _refuse(session, tap, _reason_for(exc))
        tap.card_uid, tap.card_id, tap.pupil_id = card.uid, card.id, card.pupil_id
        tap.sun_verified = bool(request.sun_url)  # identify_sun checked it, or raised
        if card.status is not CardStatus.ACTIVE:
            return _refuse(session, tap, Reason(f"card_{card.status.value}"))
        first = _first_of_retap(
            session, card, request.read_at, canteen.retap_window(session, school.id)
        )
        if first is not None:
            return _repeat(session, tap, first)
        return _charge(session, school, tap, request, device)

    def _identify(self, session: Session, request: TapRequest) -> Card:
        if request.sun_url:
            message = SunMessage.from_url(request.sun_url)
            return cards.identify_sun(session=session, message=message, keyring=self._keyring)
        return cards.identify_uid(session, request.uid)


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


def _reason_for(exc: CardPayError) -> Reason:
    if isinstance(exc, SunReplayedError):
        return Reason.REPLAYED
    if isinstance(exc, SunForgedError | SunRefusedError):
        return Reason.CARD_NOT_GENUINE
    if isinstance(exc, UnknownCardError):
        return Reason.UNKNOWN_CARD
    return Reason.UNKNOWN_CARD


def _refuse(session: Session, tap: Tap, reason: Reason, alert: str = "") -> Verdict:
    tap.accepted, tap.reason = False, reason.value
    tap.alert = alert or _ALERTS.get(reason, "")
    session.add(tap)
    if tap.alert:
        _audit_alert(session, tap)
    session.commit()
    return verdict_of(session, tap)


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


def _repeat(session: Session, tap: Tap, first: Tap) -> Verdict:
    tap.repeat_of_id = first.id
    tap.accepted, tap.reason = first.accepted, first.reason
    tap.balance_after_cents = first.balance_after_cents
    session.add(tap)
    session.commit()
    return verdict_of(session, tap)


def _pupil_state(
    session: Session, rules: CanteenRules, pupil: Pupil, account: Account, read_at: datetime
) -> PupilState:
    day = canteen.pupil_day(
        session, pupil.id or 0, canteen.day_bounds(rules, school_day(rules, read_at))
    )
    return PupilState(
        card_status=CardStatus.ACTIVE,
        tariff_band=pupil.tariff_band,
        balance_cents=account.balance_cents,
        daily_limit_cents=None,
        spent_today_cents=day.spent_cents,
        first_meal_today_at=day.first_meal_at,
        floor_cents=canteen.floor_of(account, rules),
    )


def _charge(
    session: Session, school: School, tap: Tap, request: TapRequest, device: Device
) -> Verdict:
    rules = canteen.rules_for(session, school)
    pupil = session.get(Pupil, tap.pupil_id)
    assert pupil is not None
    account = canteen.lock(
        session,
        pupil_account(session=session, pupil=pupil, floor_cents=rules.overdraft_floor_cents),
    )
    decision = decide(
        rules, _pupil_state(session, rules, pupil, account, request.read_at), request.read_at
    )
    if request.offline_accepted is None:
        if not decision.accepted:
            return _refuse(session, tap, decision.reason)
        return _post_meal(session, school, tap, account, decision, device, offline=False)
    if not request.offline_accepted:
        return _refuse(
            session, tap, decision.reason if not decision.accepted else Reason.OFFLINE_ALLOWANCE
        )
    served = Decision(
        accepted=True, reason=Reason.OK, price_cents=rules.price_for(pupil.tariff_band)
    )
    if not decision.accepted:
        tap.alert = f"served offline although: {decision.message('en', rules.timezone)}"
    return _post_meal(session, school, tap, account, served, device, offline=True)


def _post_meal(
    session: Session,
    school: School,
    tap: Tap,
    account: Account,
    decision: Decision,
    device: Device,
    *,
    offline: bool,
) -> Verdict:
    price = decision.price_cents
    tap.accepted, tap.reason, tap.price_cents = True, decision.reason.value, price
    tap.balance_after_cents = account.balance_cents - price
    session.add(tap)
    if tap.alert:
        _audit_alert(session, tap)
    if price == 0:
        session.commit()
        return verdict_of(session, tap)
    revenue = school_account(
        session=session, school_id=school.id or 0, kind=AccountKind.MEAL_REVENUE
    )
    try:
        post(
            session=session,
            school_id=school.id or 0,
            kind=TransactionKind.MEAL,
            client_id=f"tap:{tap.tap_id}",
            legs=[(account, -price), (revenue, price)],
            actor_device_id=device.id,
            occurred_at=tap.read_at,
            enforce_floors=not offline,
            memo=f"meal, {device.name}",
        )
    except InsufficientFundsError:
        # The rules read the balance under the same lock, so this means the account's
        # floor and the rules disagree; refuse rather than charge.
        tap.price_cents, tap.balance_after_cents = 0, None
        return _refuse(session, tap, Reason.INSUFFICIENT_FUNDS)
    return verdict_of(session, tap)
