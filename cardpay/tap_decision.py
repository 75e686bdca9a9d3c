"""One tap decided inside the caller's write transaction: recorded with its verdict, and
the meal posted, or nothing at all if anything raises.

The order of checks: the tap id (a retry gets its first verdict), the card (genuine,
known, active), a re-tap of the same card within seconds (the first verdict again, no
charge), then the canteen's rules. A tap the till decided offline is charged as it was
decided: the meal was served. Nothing here commits: the till commits (or, on SQLite,
the group committer commits a batch of taps); the verdict is built before the commit,
so nothing is read after it.

An NTAG 424 DNA card counts its reads, and each SUN message carries the count. The rule:
a counter value used once is a replay (refused, with an alert: a copied message). A live
tap must also carry a counter above the highest seen for the card, since a copy of a
message the card mirrored earlier (skimmed, say) is otherwise new to us. A tap the till
decided offline may arrive after later taps of the same card from other tills: a counter
never seen before, even below the highest, is then a meal served (or refused) at that till
and is taken as the till decided it. Every counter used is kept on its tap, one tap per
card and counter (a unique index), so arrival order cannot make a served meal unpaid.

What the till did is what the ledger ends with: a tap the till decided alone after the
server had already decided it (the server's answer came too late) is settled when the
journal reports the till's outcome (`cardpay.disagreements`); a tap the till served
offline whose card the server refuses is recorded as a meal nobody can be charged for.

What the card proved (its SUN message checked) and the school's rules are worked out
before the transaction; everything money depends on is read inside it, in one statement
(`tap_rows.card_state`). On PostgreSQL the pupil's account row is locked before that
read; meal revenue's is not (it keeps no balance on its row), so a school's taps for
different pupils do not wait for each other.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection
from sqlmodel import Session, select

from cardpay import alerts, canteen, disagreements, tap_rows
from cardpay.accounts import pupil_account
from cardpay.booking import AccountIds, book
from cardpay.canteen_cache import Canteen
from cardpay.card_keys import FIRST_VERSION
from cardpay.cards import mask_uid
from cardpay.errors import TapConflictError
from cardpay.models import AccountKind, CardKind, CardStatus, Tap, TransactionKind
from cardpay.rules import Decision, PupilState, Reason, decide, school_day
from cardpay.tap_rows import CardState, PupilRow, RecordedTap, TapRecord
from cardpay.verdicts import Verdict, make_verdict, verdict_of
from school import audit
from school.models import Pupil

logger = logging.getLogger(__name__)

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
class Identity:
    """What the card proved, worked out before any lock: `uid` to look up (None when
    the tap is refused before that, with `refusal`), the SUN read counter to claim."""

    claimed_uid: str  # what the till said, normalised; "" when unreadable
    uid: str | None
    counter: int | None = None
    sun: bool = False
    refusal: Reason | None = None
    alert: str = ""  # what staff are told of a refusal, when more than its reason says
    key_version: int = FIRST_VERSION  # the card keys that signed its SUN message


@dataclass(frozen=True)
class TapInput:
    device_id: int
    device_name: str
    school_id: int
    request: TapRequest
    received_at: datetime
    identity: Identity
    canteen: Canteen


def decide_tap(conn: Connection, tap: TapInput) -> Verdict:
    """Record `tap` with its verdict, post its meal if it has one; never commits."""
    found = tap_rows.recorded_tap(conn, tap.request.tap_id)
    if found is not None:
        if found.device_id != tap.device_id:
            raise TapConflictError("this tap id was already sent by another till")
        return _answer_again(conn, tap, found)
    record, identity = _new_record(tap), tap.identity
    if identity.uid is None:
        return _refuse(conn, tap, record, None, identity.refusal or Reason.UNKNOWN_CARD,
                       alert=identity.alert)
    state = _card_state(conn, tap, identity.uid)
    if state is None:
        if identity.sun:  # genuine, but not issued here: staff may enrol it as secure
            record.card_uid, record.sun_verified = identity.uid, True
        return _refuse(conn, tap, record, None, Reason.UNKNOWN_CARD)
    if identity.sun != (state.kind is CardKind.NTAG424):
        # A secure card read without its signature (a copy?), or a UID card's SUN message.
        return _refuse(conn, tap, record, None, Reason.CARD_NOT_GENUINE)
    if identity.sun and identity.key_version != (state.key_version or FIRST_VERSION):
        # Signed with keys the card held before it was personalised again.
        return _refuse(conn, tap, record, None, Reason.REPLAYED,
                       alert="a message signed with the card's earlier keys was replayed")
    if identity.counter is not None and not _fresh_counter(conn, tap, state.card_id,
                                                           identity):
        logger.warning("replayed SUN counter %s for card %s", identity.counter,
                       mask_uid(state.uid))
        return _refuse(conn, tap, record, None, Reason.REPLAYED)
    record.card_uid, record.card_id, record.pupil_id = state.uid, state.card_id, state.pupil.id
    record.sun_verified, record.sun_counter = identity.sun, identity.counter
    if identity.counter is not None:
        record.sun_key_version = identity.key_version
    if state.account_closed:  # the pupil has left: their cards were retired with it
        return _refuse(conn, tap, record, state.pupil, Reason.ACCOUNT_CLOSED)
    if state.status is not CardStatus.ACTIVE:
        return _refuse(conn, tap, record, state.pupil, Reason(f"card_{state.status.value}"))
    if state.retap_of is not None:
        return _repeat(conn, tap, record, state)
    return _charge(conn, tap, record, state)


def _fresh_counter(conn: Connection, tap: TapInput, card_id: int, identity: Identity) -> bool:
    """The SUN read counter rule (see the module's docstring)."""
    counter = identity.counter
    assert counter is not None
    if tap_rows.counter_used(conn, card_id, identity.key_version, counter):
        return False
    highest = tap_rows.claim_counter(conn, card_id, counter)
    return highest or tap.request.offline_accepted is not None


def _new_record(tap: TapInput) -> TapRecord:
    request = tap.request
    return TapRecord(
        tap_id=request.tap_id,
        school_id=tap.school_id,
        device_id=tap.device_id,
        card_uid=tap.identity.claimed_uid,
        read_at=request.read_at,
        received_at=tap.received_at,
        decided_offline=request.offline_accepted is not None,
        till_accepted=request.offline_accepted,
    )


def _card_state(conn: Connection, tap: TapInput, uid: str) -> CardState | None:
    rules, read_at = tap.canteen.rules, tap.request.read_at

    def read() -> CardState | None:
        return tap_rows.card_state(
            conn, uid, school_id=tap.school_id, device_id=tap.device_id, read_at=read_at,
            day=canteen.day_bounds(rules, school_day(rules, read_at)),
            retap_from=read_at - tap.canteen.retap,
        )

    state = read()
    if state is None:
        return None
    if state.account_id is None:  # the pupil's first tap: open the account
        with _orm(conn) as session:
            pupil_account(session=session, pupil=session.get_one(Pupil, state.pupil.id),
                          floor_cents=rules.overdraft_floor_cents)
        state = read()
        assert state is not None
    if conn.dialect.name != "sqlite":
        assert state.account_id is not None
        # The pupil's row only: meal revenue keeps no balance on its row (cardpay.booking),
        # so the taps of a school do not queue on it.
        tap_rows.lock_accounts(conn, [state.account_id])
        state = read()  # again, now that no other tap can change it
    return state


def _charge(conn: Connection, tap: TapInput, record: TapRecord, state: CardState) -> Verdict:
    rules, request = tap.canteen.rules, tap.request
    floor = rules.overdraft_floor_cents if state.floor_cents is None else state.floor_cents
    pupil = PupilState(
        card_status=CardStatus.ACTIVE,
        tariff_band=state.pupil.tariff_band,
        balance_cents=state.balance_cents,
        daily_limit_cents=state.daily_limit_cents,
        spent_today_cents=state.spent_today_cents,
        first_meal_today_at=state.first_meal_at,
        floor_cents=floor,
    )
    decision = decide(rules, pupil, request.read_at)
    if request.offline_accepted is None:
        if not decision.accepted:
            return _refuse(conn, tap, record, state.pupil, decision.reason, decision)
        return _post_meal(conn, tap, record, state, decision, offline=False)
    if not request.offline_accepted:
        reason = decision.reason if not decision.accepted else Reason.OFFLINE_ALLOWANCE
        return _refuse(conn, tap, record, state.pupil, reason)
    served = Decision(
        accepted=True, reason=Reason.OK, price_cents=rules.price_for(state.pupil.tariff_band)
    )
    if not decision.accepted:
        record.alert = f"served offline although: {decision.message('en', rules.timezone)}"
    return _post_meal(conn, tap, record, state, served, offline=True)


def _post_meal(conn: Connection, tap: TapInput, record: TapRecord, state: CardState,
               decision: Decision, *, offline: bool) -> Verdict:
    price = decision.price_cents
    record.accepted, record.reason, record.price_cents = True, decision.reason.value, price
    record.balance_after_cents = state.balance_cents - price
    verdict = _verdict(tap, record, state.pupil, decision)
    if price > 0:
        assert state.account_id is not None
        # Floors are enforced (online) in the balance update itself; the rules above
        # are as strict, so a refusal here is a bug and fails the tap rather than charge.
        # The account's own school, so the ledger's guard checks it.
        lunch = AccountIds(state.account_id, state.pupil.school_id, AccountKind.PUPIL_LUNCH)
        book(
            conn, school_id=tap.school_id, kind=TransactionKind.MEAL,
            client_id=meal_client_id(record.tap_id),
            legs=[(lunch, -price), (tap.canteen.revenue, price)],
            created_at=record.received_at, occurred_at=record.read_at,
            memo=f"meal, {tap.device_name}",
            actor_device_id=tap.device_id, enforce_floors=not offline,
        )
        _low_balance(conn, state, record)
    tap_rows.insert_tap(conn, record)
    if record.alert:
        _audit_alert(conn, record)
    return verdict


def meal_client_id(tap_id: str) -> str:
    """The client id a tap's meal is booked under (`cardpay.booking.booked_id` finds it)."""
    return f"tap:{tap_id}"


def _low_balance(conn: Connection, state: CardState, record: TapRecord) -> None:
    """Raise or re-arm the parents' low-balance alert, with the meal (rarely needed)."""
    balance = record.balance_after_cents
    assert balance is not None
    if (balance < state.alert_threshold_cents) == state.open_alert:
        return  # below with an alert already open, or above with none: nothing changes
    with _orm(conn) as session:
        alerts.after_debit(session, pupil_id=record.pupil_id or 0, new_balance_cents=balance,
                           clock=lambda: record.received_at)


def _refuse(conn: Connection, tap: TapInput, record: TapRecord, pupil: PupilRow | None,
            reason: Reason, decision: Decision | None = None, *, alert: str = "") -> Verdict:
    record.accepted, record.reason, record.price_cents = False, reason.value, 0
    record.balance_after_cents = None
    record.alert = alert or _ALERTS.get(reason, "")
    verdict = _verdict(tap, record, pupil, decision or Decision(accepted=False, reason=reason))
    tap_rows.insert_tap(conn, record)
    if tap.request.offline_accepted:  # served offline, and the card refused here
        with _orm(conn) as session:
            row_id = session.exec(select(Tap.id).where(Tap.tap_id == record.tap_id)).one()
            assert row_id is not None
            disagreements.served_not_charged(session, row_id, tap.received_at)
    elif record.alert:
        _audit_alert(conn, record)
    return verdict


def _answer_again(conn: Connection, tap: TapInput, found: RecordedTap) -> Verdict:
    """The verdict a till is sent again when it retries a recorded tap; when its journal
    now says it decided the tap alone, the tap ends as the till did."""
    # Only a tap the server decided live can differ from what the till did alone; a
    # journal's retry of a tap it sent in offline in the first place is answered as is.
    if tap.request.offline_accepted is not None and not found.decided_offline \
            and found.repeat_of_id is None:
        with _orm(conn) as session:
            row = session.get_one(Tap, found.id)
            disagreements.settle(session, row, till_accepted=tap.request.offline_accepted,
                                 rules=tap.canteen.rules, revenue=tap.canteen.revenue,
                                 now=tap.received_at)
            session.flush()
            return verdict_of(session, row)
    decision = Decision.recorded(found.accepted, found.reason)
    if decision.reason is Reason.ALREADY_EATEN:  # says when the first meal was: by the ORM
        with _orm(conn) as session:
            return verdict_of(session, session.get_one(Tap, found.id))
    return make_verdict(found, found, tap.canteen.facts, found.pupil, _room(tap, found.pupil),
                        decision)


def _repeat(conn: Connection, tap: TapInput, record: TapRecord, state: CardState) -> Verdict:
    """A re-tap of the same card within seconds: recorded, and the first verdict again."""
    assert state.retap_of is not None
    first = tap_rows.recorded_row(conn, state.retap_of)
    record.repeat_of_id = first.id
    record.accepted, record.reason = first.accepted, first.reason
    record.balance_after_cents = first.balance_after_cents
    decision = Decision.recorded(first.accepted, first.reason, state.first_meal_at)
    verdict = make_verdict(record, first, tap.canteen.facts, state.pupil,
                           _room(tap, state.pupil), decision)
    tap_rows.insert_tap(conn, record)
    return verdict


def _verdict(tap: TapInput, record: TapRecord, pupil: PupilRow | None,
             decision: Decision) -> Verdict:
    return make_verdict(record, record, tap.canteen.facts, pupil, _room(tap, pupil), decision)


def _room(tap: TapInput, pupil: PupilRow | None) -> str:
    return tap.canteen.rooms.get(pupil.classroom_id or 0, "") if pupil else ""


def _audit_alert(conn: Connection, tap: TapRecord) -> None:
    with _orm(conn) as session:
        audit.record(
            session,
            action="tap.alert",
            school_id=tap.school_id,
            actor_device_id=tap.device_id,
            target_type="card",
            target_id=tap.card_id or "",
            alert=tap.alert,
            tap_id=tap.tap_id,
            uid=mask_uid(tap.card_uid) if tap.card_uid else "",
        )


@contextmanager
def _orm(conn: Connection) -> Iterator[Session]:
    """An ORM session inside the tap's transaction, for the rare paths (a pupil's first
    tap, a retry of a 'second meal' refusal, an alert): its own savepoint, released on
    success."""
    session = Session(bind=conn, join_transaction_mode="create_savepoint",
                      expire_on_commit=False)
    try:
        yield session
        session.commit()
    finally:
        session.close()
