"""Money handled by the office: top-ups with numbered receipts, refunds, corrections and
reversals, each audited with the reason given.

Every function takes the form's client id (so a form posted twice posts once) and
commits through `cardpay.ledger`: give them a session from `school.db.immediate_session`.
A receipt's number comes from `ReceiptCounter`, incremented in the same database
transaction as the top-up: the counter's row lock (PostgreSQL) or the write lock (SQLite,
BEGIN IMMEDIATE) makes concurrent top-ups take turns, and a top-up that does not commit
takes its number back with it, so numbers have no gaps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from cardpay import alerts
from cardpay.account_models import Receipt, ReceiptCounter, Tender
from cardpay.accounts import check_open, pupil_account, school_account
from cardpay.errors import (
    CardPayError,
    IdempotencyConflictError,
    InvalidAmountError,
    ReasonRequiredError,
)
from cardpay.ledger import Posted, post, reverse
from cardpay.models import Account, AccountKind, LedgerTransaction, Posting, TransactionKind
from school import audit
from school.clock import Clock, utcnow
from school.models import Pupil

logger = logging.getLogger(__name__)

OFFICE_MAX_TOPUP_CENTS = 200_000  # a family's term paid by cheque; more is a typo
CORRECTION_MAX_CENTS = 50_000
MIN_REASON_CHARS = 3
TENDER_ACCOUNTS = {Tender.CASH: AccountKind.CASH_DRAWER, Tender.CHEQUE: AccountKind.CHEQUES,
                   Tender.TRANSFER: AccountKind.BANK}


@dataclass(frozen=True)
class Actor:
    """Who does it, for the ledger and the audit log."""

    user_id: int
    ip: str | None = None


def require_reason(reason: str) -> str:
    text = " ".join(reason.split())
    if len(text) < MIN_REASON_CHARS:
        raise ReasonRequiredError("reason.required", "a reason is required")
    return text[:400]


def _check_amount(amount_cents: int, max_cents: int) -> None:
    if type(amount_cents) is not int or amount_cents <= 0:
        raise InvalidAmountError("amount.format", "amounts are positive int cents")
    if amount_cents > max_cents:
        raise InvalidAmountError("amount.too_large", f"{amount_cents} > {max_cents} cents")


def receipt_for(session: Session, client_id: str) -> Receipt | None:
    return session.exec(select(Receipt).where(Receipt.client_id == client_id)).first()


def office_topup(
    *, session: Session, pupil: Pupil, amount_cents: int, tender: Tender, client_id: str,
    actor: Actor, reference: str = "", clock: Clock = utcnow,
) -> Receipt:
    """Credit the pupil's account with money handed in, and return its numbered receipt;
    a repeat of the same form returns the first receipt and posts nothing."""
    _check_amount(amount_cents, OFFICE_MAX_TOPUP_CENTS)
    first = receipt_for(session, client_id)
    if first is not None:
        return _replayed(session, first, pupil, amount_cents, tender)
    check_open(session, pupil)
    account = pupil_account(session=session, pupil=pupil)
    drawer = school_account(session=session, school_id=pupil.school_id,
                            kind=TENDER_ACCOUNTS[tender])
    number = next_receipt_number(session, pupil.school_id)
    receipt = Receipt(school_id=pupil.school_id, number=number, client_id=client_id,
                      pupil_id=pupil.id, tender=tender, amount_cents=amount_cents,  # type: ignore[arg-type]
                      reference=reference.strip()[:100], issued_at=clock(),
                      issued_by_user_id=actor.user_id)
    session.add(receipt)
    audit.record(session, action="money.topup", school_id=pupil.school_id,
                 actor_user_id=actor.user_id, target_type="pupil", target_id=pupil.id or "",
                 ip=actor.ip, amount_cents=amount_cents, tender=tender.value, receipt=number)
    posted = _post(session, pupil, TransactionKind.TOPUP, client_id,
                   [(drawer, -amount_cents), (account, amount_cents)], actor,
                   memo=f"receipt {number}", clock=clock)
    if posted.replayed:  # the same form, committed by a racing request: theirs stands
        found = receipt_for(session, client_id)
        assert found is not None
        return found
    logger.info("receipt %s: %s cents for pupil %s", number, amount_cents, pupil.id)
    _after(session, account)
    return receipt


def _replayed(session: Session, first: Receipt, pupil: Pupil, amount_cents: int,
              tender: Tender) -> Receipt:
    session.rollback()
    if (first.pupil_id, first.amount_cents, first.tender) != (pupil.id, amount_cents, tender):
        raise IdempotencyConflictError("this form was already used for another top-up")
    return first


def next_receipt_number(session: Session, school_id: int) -> int:
    """The school's next receipt number, taken inside the caller's transaction."""
    exists = session.exec(
        select(ReceiptCounter.school_id).where(ReceiptCounter.school_id == school_id)
    ).first()
    if exists is None:
        try:
            with session.begin_nested():
                session.add(ReceiptCounter(school_id=school_id, last_number=0))
        except IntegrityError:
            pass  # another request created it first
    session.execute(update(ReceiptCounter).where(col(ReceiptCounter.school_id) == school_id)
                    .values(last_number=ReceiptCounter.last_number + 1))
    number = session.exec(select(ReceiptCounter.last_number)
                          .where(ReceiptCounter.school_id == school_id)
                          .execution_options(populate_existing=True)).one()
    return int(number)


def refund(
    *, session: Session, pupil: Pupil, amount_cents: int, tender: Tender, reason: str,
    client_id: str, actor: Actor, clock: Clock = utcnow,
) -> Posted:
    """Give money back: cash from the office drawer, or a cheque or transfer the school
    owes (the refunds account). Never more than the balance."""
    reason = require_reason(reason)
    _check_amount(amount_cents, OFFICE_MAX_TOPUP_CENTS)
    account = _locked(session, pupil_account(session=session, pupil=pupil))
    # A repeat of a refund that emptied the account goes on to post() as a replay.
    if amount_cents > max(0, account.balance_cents) and not _posted(session, client_id):
        session.rollback()
        raise InvalidAmountError("amount.above_balance", "a refund is at most the balance")
    kind = AccountKind.CASH_DRAWER if tender is Tender.CASH else AccountKind.REFUNDS
    payer = school_account(session=session, school_id=pupil.school_id, kind=kind)
    audit.record(session, action="money.refund", school_id=pupil.school_id,
                 actor_user_id=actor.user_id, target_type="pupil", target_id=pupil.id or "",
                 ip=actor.ip, amount_cents=amount_cents, tender=tender.value, reason=reason)
    posted = _post(session, pupil, TransactionKind.REFUND, client_id,
                   [(account, -amount_cents), (payer, amount_cents)], actor, memo=reason,
                   clock=clock)
    _after(session, account)
    return posted


def _posted(session: Session, client_id: str) -> bool:
    return session.exec(select(LedgerTransaction.id)
                        .where(LedgerTransaction.client_id == client_id)).first() is not None


def correct(
    *, session: Session, pupil: Pupil, amount_cents: int, reason: str, client_id: str,
    actor: Actor, clock: Clock = utcnow,
) -> Posted:
    """Adjust the balance by `amount_cents` (positive: credit, negative: debit) against
    the adjustments account. Floors are not enforced: staff decide."""
    reason = require_reason(reason)
    _check_amount(abs(amount_cents), CORRECTION_MAX_CENTS)
    account = pupil_account(session=session, pupil=pupil)
    adjustments = school_account(session=session, school_id=pupil.school_id,
                                 kind=AccountKind.ADJUSTMENTS)
    audit.record(session, action="money.correction", school_id=pupil.school_id,
                 actor_user_id=actor.user_id, target_type="pupil", target_id=pupil.id or "",
                 ip=actor.ip, amount_cents=amount_cents, reason=reason)
    posted = _post(session, pupil, TransactionKind.CORRECTION, client_id,
                   [(account, amount_cents), (adjustments, -amount_cents)], actor,
                   memo=reason, clock=clock, enforce_floors=False)
    _after(session, account)
    return posted


def reverse_mistake(
    *, session: Session, transaction: LedgerTransaction, reason: str, client_id: str,
    actor: Actor, clock: Clock = utcnow,
) -> Posted:
    """Undo a mistaken transaction with a reversing one that names the reason."""
    reason = require_reason(reason)
    audit.record(session, action="money.reversal", school_id=transaction.school_id,
                 actor_user_id=actor.user_id, target_type="transaction",
                 target_id=transaction.id or "", ip=actor.ip, reason=reason)
    try:
        posted = reverse(session=session, transaction=transaction, client_id=client_id,
                         memo=reason, actor_user_id=actor.user_id, clock=clock)
    except CardPayError:
        session.rollback()
        raise
    for account in _pupil_accounts_of(session, transaction):
        _after(session, account)
    return posted


def _pupil_accounts_of(session: Session, transaction: LedgerTransaction) -> list[Account]:
    return list(session.exec(
        select(Account).join(Posting, col(Posting.account_id) == col(Account.id))
        .where(Posting.transaction_id == transaction.id,
               Account.kind == AccountKind.PUPIL_LUNCH)
    ).all())


def _locked(session: Session, account: Account) -> Account:
    # Read the balance under the row lock the ledger will take anyway (PostgreSQL), so two
    # refunds cannot both pass the balance check.
    found = session.exec(select(Account).where(Account.id == account.id).with_for_update()
                         .execution_options(populate_existing=True)).one()
    return found


def _post(session: Session, pupil: Pupil, kind: TransactionKind, client_id: str,
          legs: list[tuple[Account, int]], actor: Actor, *, memo: str, clock: Clock,
          enforce_floors: bool = True) -> Posted:
    try:
        return post(session=session, school_id=pupil.school_id, kind=kind,
                    client_id=client_id, legs=legs, memo=memo, actor_user_id=actor.user_id,
                    enforce_floors=enforce_floors, clock=clock)
    except CardPayError:
        session.rollback()
        raise


def _after(session: Session, account: Account) -> None:
    """Re-arm the pupil's low-balance alert if the balance now committed is back above
    the threshold. Only meals raise alerts: parents asked for a refund, staff know why
    they corrected."""
    session.refresh(account)
    assert account.pupil_id is not None
    alerts.after_credit(session, pupil_id=account.pupil_id,
                        new_balance_cents=account.balance_cents)
    session.commit()
