"""Proof that the ledger adds up, for `moulin db check`: what the database cannot enforce
by itself is checked here, and anything wrong is named."""

from __future__ import annotations

from sqlalchemy import func, literal, or_, select, union_all
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from cardpay.models import Account, AccountKind, LedgerTransaction, Posting


def check_integrity(session: Session) -> list[str]:
    """One line per problem, empty when every balance kept on an account's row (a pupil's;
    any other account's balance is the sum of its postings) equals that sum,
    every transaction has postings summing to zero on accounts of its own school, and
    every reversal posts exactly the opposite of what it reverses."""
    return [*_balances(session), *_unbalanced(session), *_foreign_accounts(session),
            *_bad_reversals(session)]


def _balances(session: Session) -> list[str]:
    total = func.coalesce(func.sum(Posting.amount_cents), literal(0))
    rows = session.execute(
        select(col(Account.id), col(Account.kind), col(Account.pupil_id),
               col(Account.device_id), col(Account.balance_cents), total)
        .join(Posting, col(Posting.account_id) == col(Account.id), isouter=True)
        .where(col(Account.kind) == AccountKind.PUPIL_LUNCH)
        .group_by(col(Account.id))
        .having(col(Account.balance_cents) != total)
        .order_by(col(Account.id))
    ).all()
    return [f"account {id_} ({kind}{_owner(pupil, device)}): balance {balance} cents, "
            f"postings sum to {postings}"
            for id_, kind, pupil, device, balance, postings in rows]


def _owner(pupil_id: int | None, device_id: int | None) -> str:
    if pupil_id is not None:
        return f" of pupil {pupil_id}"
    return f" of device {device_id}" if device_id is not None else ""


def _unbalanced(session: Session) -> list[str]:
    total = func.coalesce(func.sum(Posting.amount_cents), literal(0))
    legs = func.count(col(Posting.id))
    rows = session.execute(
        select(col(LedgerTransaction.id), col(LedgerTransaction.client_id), total, legs)
        .join(Posting, col(Posting.transaction_id) == col(LedgerTransaction.id), isouter=True)
        .group_by(col(LedgerTransaction.id), col(LedgerTransaction.client_id))
        .having(or_(total != 0, legs < 2))
        .order_by(col(LedgerTransaction.id))
    ).all()
    return [f"transaction {id_} (client id {client_id}): {n} posting(s) summing to "
            f"{cents} cents" for id_, client_id, cents, n in rows]


def _foreign_accounts(session: Session) -> list[str]:
    rows = session.execute(
        select(col(LedgerTransaction.id), col(Account.id))
        .join(Posting, col(Posting.transaction_id) == col(LedgerTransaction.id))
        .join(Account, col(Account.id) == col(Posting.account_id))
        .where(col(Account.school_id) != col(LedgerTransaction.school_id))
        .order_by(col(LedgerTransaction.id))
    ).all()
    return [f"transaction {txn} posts to account {account} of another school"
            for txn, account in rows]


def _bad_reversals(session: Session) -> list[str]:
    # Each reversal's own postings plus the postings it reverses, per account, must cancel.
    # Two indexed joins under UNION ALL rather than one join on an OR, which no index serves.
    reversal = aliased(LedgerTransaction)
    legs = union_all(*(
        select(col(reversal.id).label("reversal_id"),
               col(reversal.reverses_id).label("original_id"),
               col(Posting.account_id).label("account_id"),
               col(Posting.amount_cents).label("cents"))
        .join(Posting, col(Posting.transaction_id) == side)
        .where(col(reversal.reverses_id).is_not(None))
        for side in (col(reversal.id), col(reversal.reverses_id))
    )).subquery()
    rows = session.execute(
        select(legs.c.reversal_id, legs.c.original_id, legs.c.account_id)
        .group_by(legs.c.reversal_id, legs.c.original_id, legs.c.account_id)
        .having(func.sum(legs.c.cents) != 0)
        .order_by(legs.c.reversal_id)
    ).all()
    return [f"transaction {rev} does not exactly reverse transaction {orig} "
            f"on account {account}" for rev, orig, account in rows]
