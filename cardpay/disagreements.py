"""When a till and the server differ on a tap, the ledger ends with what the till did.

A till decides alone when the server does not answer within its deadline. The server may
still have decided the same tap (its answer came late), or may decide it differently when
the journal sends it in. The till's outcome is what happened at the counter, so it wins:

- the server charged, the till refused: the charge is reversed (a `reversal` transaction
  with the reason), and the tap is recorded as refused;
- the server refused, the till served: the meal is charged when the journal reports it,
  as any meal served offline is (floors not enforced: the meal was eaten), unless the card
  itself was refused (unknown here, not genuine, replayed, lost, blocked, replaced, or the
  pupil has left): that meal cannot be charged to anyone, and says so.

Each such tap gets a `TillDisagreement` row saying what was done, an audit entry, and an
alert on the tap; staff list them on the health page.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session, col, select

from cardpay.accounts import pupil_account
from cardpay.booking import AccountIds
from cardpay.ledger import post, reverse
from cardpay.models import (
    Account,
    Disagreement,
    LedgerTransaction,
    Tap,
    TillDisagreement,
    TransactionKind,
)
from cardpay.rules import CanteenRules, Reason
from school import audit
from school.models import Pupil

logger = logging.getLogger(__name__)

# Refusals of the card or the account, not of the meal: a till that served anyway served
# someone the server cannot charge.
CARD_REFUSALS = frozenset({
    Reason.UNKNOWN_CARD, Reason.CARD_NOT_GENUINE, Reason.REPLAYED, Reason.CARD_LOST,
    Reason.CARD_BLOCKED, Reason.CARD_RETIRED, Reason.ACCOUNT_CLOSED,
})

ALERTS = {
    Disagreement.CHARGE_REVERSED: "the till refused this meal (it decided before the "
                                  "server's late answer): the charge was reversed",
    Disagreement.CHARGED_LATE: "the till served this meal (it decided before the server's "
                               "late answer): charged when its journal reported it",
    Disagreement.NOT_CHARGED: "the till served this meal offline; it cannot be charged",
    Disagreement.NOTHING_TO_DO: "the till and the server differed; no money had moved",
}


def settle(session: Session, tap: Tap, *, till_accepted: bool, rules: CanteenRules,
           revenue: AccountIds, now: datetime) -> TillDisagreement | None:
    """Make `tap`, first decided by the server, end as the till did (`till_accepted`), as
    the till's journal reports. Idempotent: a tap is settled once. Returns the
    disagreement recorded, None when there was none."""
    if tap.till_accepted is not None or tap.decided_offline:
        return None  # settled before, or decided from the journal in the first place
    tap.till_accepted = till_accepted
    session.add(tap)
    if tap.repeat_of_id is not None or tap.accepted == till_accepted:
        return None  # a re-tap moves no money; an agreement needs nothing
    server = (tap.accepted, tap.reason)
    if tap.accepted:
        kind, txn_id, amount = _reverse_meal(session, tap, now)
        tap.accepted, tap.reason, tap.price_cents = False, Reason.TILL_REFUSED.value, 0
        tap.balance_after_cents = None
    elif Reason(tap.reason) in CARD_REFUSALS or tap.pupil_id is None:
        kind, txn_id, amount = Disagreement.NOT_CHARGED, None, 0
    else:
        kind, txn_id, amount = _charge_meal(session, tap, rules, revenue, now)
    return _record(session, tap, kind, server, txn_id, amount, now)


def served_not_charged(session: Session, tap_row_id: int, now: datetime) -> TillDisagreement:
    """Record that a till served `tap` offline and the server refused its card: nobody can
    be charged for that meal."""
    tap = session.get_one(Tap, tap_row_id)
    tap.till_accepted = True
    session.add(tap)
    return _record(session, tap, Disagreement.NOT_CHARGED, (False, tap.reason), None, 0, now)


def listed(session: Session, *, school_id: int, limit: int = 200) -> list[TillDisagreement]:
    """The school's disagreements, newest first."""
    return list(session.exec(
        select(TillDisagreement)
        .where(TillDisagreement.school_id == school_id)
        .order_by(col(TillDisagreement.read_at).desc(), col(TillDisagreement.id).desc())
        .limit(limit)
    ).all())


def _reverse_meal(session: Session, tap: Tap,
                  now: datetime) -> tuple[Disagreement, int | None, int]:
    meal = session.exec(
        select(LedgerTransaction).where(LedgerTransaction.client_id == f"tap:{tap.tap_id}")
    ).first()
    if meal is None:  # a free meal: nothing was charged
        return Disagreement.NOTHING_TO_DO, None, 0
    posted = reverse(session=session, transaction=meal, client_id=f"tap-undo:{tap.tap_id}",
                     memo="the till refused this meal before the server's answer came",
                     actor_device_id=tap.device_id, clock=lambda: now)
    return Disagreement.CHARGE_REVERSED, posted.transaction.id, -tap.price_cents


def _charge_meal(session: Session, tap: Tap, rules: CanteenRules, revenue: AccountIds,
                 now: datetime) -> tuple[Disagreement, int | None, int]:
    pupil = session.get_one(Pupil, tap.pupil_id)
    price = rules.price_for(pupil.tariff_band)
    account = pupil_account(session=session, pupil=pupil)
    txn_id = None
    if price > 0:
        posted = post(
            session=session, school_id=tap.school_id, kind=TransactionKind.MEAL,
            client_id=f"tap-served:{tap.tap_id}",
            legs=[(account, -price), (session.get_one(Account, revenue.id), price)],
            memo="meal served by the till before the server's answer came",
            actor_device_id=tap.device_id, occurred_at=tap.read_at, enforce_floors=False,
            clock=lambda: now,
        )
        txn_id = posted.transaction.id
        session.refresh(account)
    tap.accepted, tap.reason, tap.price_cents = True, Reason.OK.value, price
    tap.balance_after_cents = account.balance_cents
    return Disagreement.CHARGED_LATE, txn_id, price


def _record(session: Session, tap: Tap, kind: Disagreement, server: tuple[bool, str],
            txn_id: int | None, amount: int, now: datetime) -> TillDisagreement:
    assert tap.id is not None
    row = TillDisagreement(
        school_id=tap.school_id, tap_row_id=tap.id, tap_id=tap.tap_id,
        device_id=tap.device_id, pupil_id=tap.pupil_id, till_accepted=bool(tap.till_accepted),
        server_accepted=server[0], server_reason=server[1], kind=kind,
        transaction_id=txn_id, amount_cents=amount, read_at=tap.read_at, settled_at=now,
    )
    session.add(row)
    detail = ALERTS[kind]
    if kind is Disagreement.NOT_CHARGED:
        detail = f"{detail} ({server[1]})"
    tap.alert = detail[:200]
    session.add(tap)
    audit.record(session, action="tap.disagreement", school_id=tap.school_id,
                 actor_device_id=tap.device_id, target_type="tap", target_id=tap.id,
                 tap_id=tap.tap_id, kind=kind.value, server_reason=server[1],
                 amount_cents=amount)
    logger.warning("tap %s: the till %s, the server had %s (%s): %s", tap.tap_id,
                   "served" if tap.till_accepted else "refused",
                   "accepted" if server[0] else "refused", server[1], kind.value)
    return row
