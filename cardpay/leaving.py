"""A pupil leaving the school: the leaving date set, the lunch account settled and closed,
the cards retired and the guardianships ended on the leaving date, in one database
transaction, audited.

What is left on the account goes back to the family: refunded (cash from the office
drawer, or a cheque or transfer the school owes, as `cardpay.office.refund` does) or
moved to a brother's or sister's account (a TRANSFER between the two lunch accounts). A
debt is not settled here: it is paid at the office (a top-up with its receipt) or written
off (a correction) first, so that closing an account never hides money owed.

The account is closed at once, whatever the leaving date: from then on the till refuses
the pupil's cards and top-ups are refused (`cardpay.accounts.check_open`). The leaving
date is when enrolment ends: guardianships, and with them the parents' pages and cameras,
last until then. Money that still arrives on a closed account (an online payment started
before) is settled again with `settle_closed`.

Give these functions a session from `school.db.immediate_session`: they commit through
`cardpay.ledger`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from cardpay import alerts, cards
from cardpay.account_models import Tender
from cardpay.accounts import check_open, pupil_account, school_account
from cardpay.errors import CardPayError, LeavingError
from cardpay.ledger import Leg, post
from cardpay.models import Account, AccountKind, TransactionKind
from cardpay.office import Actor, require_reason
from school import audit
from school.clock import Clock, utcnow
from school.models import Guardianship, Pupil
from school.people import end_guardianship

# A leaving date this far from today is taken for a typing mistake.
MAX_DATE_DISTANCE = timedelta(days=366)


class Settle(enum.StrEnum):
    REFUND = "refund"
    TRANSFER = "transfer"


@dataclass(frozen=True)
class Settlement:
    """What to do with a positive balance."""

    how: Settle
    reason: str = ""
    tender: Tender = Tender.CASH
    sibling: Pupil | None = None


@dataclass(frozen=True)
class Closed:
    pupil_id: int
    left_on: date
    settled_cents: int
    how: Settle | None
    transaction_id: int | None
    cards_retired: int
    guardianships_ended: int


def siblings_of(session: Session, pupil: Pupil, day: date) -> list[Pupil]:
    """Pupils of the same school, still enrolled on `day` with an open account, who share
    a guardian with `pupil` on that day: where a balance may be transferred."""
    def active(link: type[Guardianship]) -> ColumnElement[bool]:
        return and_(col(link.starts_on) <= day,
                    or_(col(link.ends_on).is_(None), col(link.ends_on) > day))

    # An alias, so that the inner query is not correlated with the outer one's links.
    theirs = aliased(Guardianship)
    guardians = select(theirs.user_id).where(theirs.pupil_id == pupil.id, active(theirs))
    found = session.exec(
        select(Pupil)
        .join(Guardianship, col(Guardianship.pupil_id) == col(Pupil.id))
        .join(Account, col(Account.pupil_id) == col(Pupil.id), isouter=True)
        .where(col(Guardianship.user_id).in_(guardians), active(Guardianship),
               Pupil.id != pupil.id, Pupil.school_id == pupil.school_id,
               or_(col(Pupil.left_on).is_(None), col(Pupil.left_on) > day),
               col(Account.closed_at).is_(None))
        .distinct().order_by(Pupil.last_name, Pupil.first_name)
    ).all()
    return list(found)


def close_account(
    *, session: Session, pupil: Pupil, left_on: date, settlement: Settlement | None,
    client_id: str, actor: Actor, today: date, clock: Clock = utcnow,
) -> Closed:
    """Record that `pupil` leaves on `left_on` and close their account, settling a
    positive balance as `settlement` says. LeavingError, with nothing written, when the
    account is already closed, in debt, or has money and no settlement."""
    if abs(left_on - today) > MAX_DATE_DISTANCE:
        raise LeavingError("leaving.date", f"leaving date {left_on} is too far from today")
    account = _locked(session, pupil)
    if account.closed_at is not None:
        _refuse(session, "leaving.already", "this pupil's account is already closed")
    legs, how = _settlement_legs(session, pupil, account, settlement, today)
    pupil.left_on = left_on
    session.add(pupil)
    retired = cards.retire_live_cards(session=session, pupil=pupil,
                                      actor_user_id=actor.user_id, clock=clock)
    ended = _end_guardianships(session, pupil, left_on, actor)
    account.closed_at = clock()
    session.add(account)
    audit.record(session, action="pupil.leave", school_id=pupil.school_id,
                 actor_user_id=actor.user_id, target_type="pupil", target_id=pupil.id or "",
                 ip=actor.ip, left_on=left_on.isoformat(), balance_cents=account.balance_cents,
                 settled=how.value if how else "", cards_retired=retired,
                 guardianships_ended=ended)
    txn_id = _post(session, pupil, account, legs, how, settlement, client_id, actor, clock)
    assert pupil.id is not None
    return Closed(pupil.id, left_on, -legs[0][1] if legs else 0, how, txn_id, retired, ended)


def settle_closed(
    *, session: Session, pupil: Pupil, settlement: Settlement, client_id: str, actor: Actor,
    today: date, clock: Clock = utcnow,
) -> int:
    """Settle money that reached a closed account after it was closed; returns the
    transaction's id."""
    account = _locked(session, pupil)
    if account.closed_at is None:
        _refuse(session, "leaving.open", "the account is still open: close it instead")
    legs, how = _settlement_legs(session, pupil, account, settlement, today)
    if not legs:
        _refuse(session, "leaving.nothing", "there is nothing left to settle")
    txn_id = _post(session, pupil, account, legs, how, settlement, client_id, actor, clock)
    assert txn_id is not None
    return txn_id


def _locked(session: Session, pupil: Pupil) -> Account:
    account = pupil_account(session=session, pupil=pupil)
    # Under the row lock (PostgreSQL) the ledger takes anyway, so that a meal or a
    # top-up committed meanwhile is counted in the balance settled.
    return session.exec(select(Account).where(Account.id == account.id).with_for_update()
                        .execution_options(populate_existing=True)).one()


def _refuse(session: Session, code: str, detail: str) -> None:
    session.rollback()
    raise LeavingError(code, detail)


def _settlement_legs(session: Session, pupil: Pupil, account: Account,
                     settlement: Settlement | None, today: date) -> tuple[list[Leg], Settle | None]:
    balance = account.balance_cents
    if balance < 0:
        _refuse(session, "leaving.debt", f"the account owes {-balance} cents: settle it first")
    if balance == 0:
        return [], None
    if settlement is None:
        _refuse(session, "leaving.settle", "say how the balance is given back")
    assert settlement is not None
    if settlement.how is Settle.REFUND:
        require_reason(settlement.reason)
        kind = AccountKind.CASH_DRAWER if settlement.tender is Tender.CASH \
            else AccountKind.REFUNDS
        payer = school_account(session=session, school_id=pupil.school_id, kind=kind)
        return [(account, -balance), (payer, balance)], Settle.REFUND
    sibling = settlement.sibling
    if sibling is None or sibling.id not in {p.id for p in siblings_of(session, pupil, today)}:
        _refuse(session, "leaving.sibling", "transfers go to a sibling still at the school")
    assert sibling is not None
    check_open(session, sibling)
    target = pupil_account(session=session, pupil=sibling)
    return [(account, -balance), (target, balance)], Settle.TRANSFER


def _end_guardianships(session: Session, pupil: Pupil, left_on: date, actor: Actor) -> int:
    links = session.exec(select(Guardianship).where(
        Guardianship.pupil_id == pupil.id,
        or_(col(Guardianship.ends_on).is_(None), col(Guardianship.ends_on) > left_on),
    )).all()
    for link in links:
        end_guardianship(session=session, link=link, ends_on=max(left_on, link.starts_on),
                         actor_user_id=actor.user_id)
    return len(links)


def _post(session: Session, pupil: Pupil, account: Account, legs: list[Leg],
          how: Settle | None, settlement: Settlement | None, client_id: str, actor: Actor,
          clock: Clock) -> int | None:
    """Post the settlement with everything added to the session, or just commit."""
    if not legs or how is None or settlement is None:
        session.commit()
        return None
    cents = legs[1][1]
    if how is Settle.REFUND:
        kind, memo = TransactionKind.REFUND, require_reason(settlement.reason)
        detail: dict[str, Any] = {"tender": settlement.tender.value,
                                  "reason": memo}
    else:
        assert settlement.sibling is not None
        # Ids, not names: the memo is shown to both families and is never edited.
        kind = TransactionKind.TRANSFER
        memo = f"leaving: balance of pupil {pupil.id} moved to pupil {settlement.sibling.id}"
        detail = {"to_pupil_id": settlement.sibling.id}
    audit.record(session, action=f"money.{'refund' if how is Settle.REFUND else 'transfer'}",
                 school_id=pupil.school_id, actor_user_id=actor.user_id, target_type="pupil",
                 target_id=pupil.id or "", ip=actor.ip, amount_cents=cents, **detail)
    try:
        posted = post(session=session, school_id=pupil.school_id, kind=kind,
                      client_id=client_id, legs=legs, memo=memo,
                      actor_user_id=actor.user_id, clock=clock)
    except CardPayError:
        session.rollback()
        raise
    if how is Settle.TRANSFER and not posted.replayed:
        target = legs[1][0]
        session.refresh(target)
        assert target.pupil_id is not None
        alerts.after_credit(session, pupil_id=target.pupil_id,
                            new_balance_cents=target.balance_cents)
        session.commit()
    return posted.transaction.id
