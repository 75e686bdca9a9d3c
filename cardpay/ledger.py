"""The double-entry ledger: post balanced, idempotent transactions and reverse them.

Each service call here commits its database transaction when it posts: the postings, the
accounts' cached balances, and anything the caller added to the session beforehand are
durable together or not at all. A replay (a client id posted before) rolls the
transaction back, so it changes nothing, not even what the caller added. A refusal (a
CardPayError) writes nothing and leaves the transaction open for the caller to commit what
it added (a refused tap's record) or roll back; a database error rolls it back.

On SQLite, give these functions a session from `school.db.immediate_session`: its BEGIN
IMMEDIATE takes the write lock before the first read, so two writers queue instead of one
failing with 'database is locked'. On PostgreSQL the accounts' rows are locked with
SELECT ... FOR UPDATE, in id order so that two transactions touching the same accounts
cannot deadlock.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from cardpay.errors import (
    IdempotencyConflictError,
    InsufficientFundsError,
    InvalidTransactionError,
    NotReversibleError,
)
from cardpay.integrity import check_integrity
from cardpay.ledger_rows import LedgerRequest, ledger_request
from cardpay.models import Account, LedgerTransaction, Posting, TransactionKind
from school.clock import Clock, utcnow

__all__ = ["Leg", "Posted", "available_cents", "check_debit", "check_integrity", "post",
           "reverse"]

logger = logging.getLogger(__name__)

Leg = tuple[Account, int]


@dataclass(frozen=True)
class Posted:
    """A posted transaction; `replayed` when its client id had been posted before, in
    which case this is the first posting's transaction and nothing new was written."""

    transaction: LedgerTransaction
    replayed: bool


def available_cents(account: Account) -> int | None:
    """How much may still be debited before the floor; None when there is no floor."""
    if account.floor_cents is None:
        return None
    return max(0, account.balance_cents - account.floor_cents)


def check_debit(account: Account, amount_cents: int) -> None:
    """Refuse a change of `amount_cents` that would take the account below its floor.

    Credits always pass, even to an account already below its floor (one that late
    offline taps took there), so that topping it up is always possible."""
    if amount_cents >= 0 or account.floor_cents is None:
        return
    if account.balance_cents + amount_cents < account.floor_cents:
        assert account.id is not None
        raise InsufficientFundsError(account.id, account.balance_cents, account.floor_cents,
                                     amount_cents)


def post(
    *,
    session: Session,
    school_id: int,
    kind: TransactionKind,
    client_id: str,
    legs: Sequence[Leg],
    memo: str = "",
    actor_user_id: int | None = None,
    actor_device_id: int | None = None,
    occurred_at: datetime | None = None,
    enforce_floors: bool = True,
    clock: Clock = utcnow,
) -> Posted:
    """Post `legs` (signed cents per account, summing to zero) as one transaction.

    A client id already posted returns that first transaction and posts nothing; posting
    it again with other legs raises IdempotencyConflictError. With `enforce_floors`, a
    debit that would take an account below its floor raises InsufficientFundsError; a
    tap served offline is posted without, since the meal was eaten.
    """
    if kind is TransactionKind.REVERSAL:
        raise InvalidTransactionError("reversals are made by reverse(), not post()")
    request = ledger_request(school_id, kind, client_id, legs)
    header = LedgerTransaction(
        school_id=school_id, kind=kind, client_id=client_id, memo=memo,
        actor_user_id=actor_user_id, actor_device_id=actor_device_id,
    )
    return _write(session, request, header, occurred_at=occurred_at,
                  enforce_floors=enforce_floors, clock=clock)


def reverse(
    *,
    session: Session,
    transaction: LedgerTransaction,
    client_id: str,
    memo: str = "",
    actor_user_id: int | None = None,
    actor_device_id: int | None = None,
    clock: Clock = utcnow,
) -> Posted:
    """Undo `transaction` with one that posts the opposite legs and points at it.

    Floors are not enforced: undoing a mistake must always be possible, even when the
    money has been spent since (the account then shows what is owed). A transaction is
    reversed at most once, and a reversal is not itself reversed (post the correction
    again instead), so the history stays readable.
    """
    assert transaction.id is not None
    if transaction.kind is TransactionKind.REVERSAL:
        raise NotReversibleError(f"transaction {transaction.id} is a reversal; "
                                 "post the original again instead of reversing it")
    postings = session.exec(
        select(Posting).where(Posting.transaction_id == transaction.id)
    ).all()
    request = ledger_request(
        transaction.school_id, TransactionKind.REVERSAL, client_id,
        [(_account(session, p.account_id), -p.amount_cents) for p in postings],
        reverses_id=transaction.id,
    )
    header = LedgerTransaction(
        school_id=transaction.school_id, kind=TransactionKind.REVERSAL, client_id=client_id,
        memo=memo or f"reverses transaction {transaction.id}", reverses_id=transaction.id,
        actor_user_id=actor_user_id, actor_device_id=actor_device_id,
    )
    return _write(session, request, header, occurred_at=None, enforce_floors=False,
                  clock=clock)


def _account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    assert account is not None  # a posting's foreign key guarantees it
    return account


def _write(session: Session, request: LedgerRequest, header: LedgerTransaction, *,
           occurred_at: datetime | None, enforce_floors: bool, clock: Clock) -> Posted:
    first = _find(session, request)
    if first is not None:
        session.rollback()  # a replay changes nothing, whichever way it is found
        return first
    try:
        deltas = request.deltas()
        accounts = _lock(session, sorted(deltas))
        if enforce_floors:
            raced = _check_floors(session, request, accounts, deltas)
            if raced is not None:
                return raced
        now = clock()
        header.created_at = now
        header.occurred_at = occurred_at or now
        session.add(header)
        session.flush()
        assert header.id is not None
        session.add_all(Posting(transaction_id=header.id, account_id=account_id,
                                amount_cents=cents) for account_id, cents in request.legs)
        for account_id, delta in deltas.items():
            session.execute(update(Account).where(col(Account.id) == account_id)
                            .values(balance_cents=Account.balance_cents + delta))
        session.commit()
    except IntegrityError as exc:
        # Someone posted the same client id (or reversed the same transaction) between
        # our look-up and our insert: their transaction stands and ours is void.
        session.rollback()
        first = _find(session, request)
        if first is None:
            raise InvalidTransactionError(f"the database refused the transaction: {exc.orig}") \
                from exc
        return first
    except SQLAlchemyError:
        session.rollback()
        raise
    return Posted(header, replayed=False)


def _check_floors(session: Session, request: LedgerRequest, accounts: Sequence[Account],
                  deltas: dict[int, int]) -> Posted | None:
    try:
        for account in accounts:
            assert account.id is not None
            check_debit(account, deltas[account.id])
    except InsufficientFundsError:
        # On PostgreSQL a copy of this request may have committed while we waited for the
        # lock, spending the money: then this is its replay, not a refusal. (Under
        # READ COMMITTED this new statement sees that commit; on SQLite, BEGIN IMMEDIATE
        # made the first look-up final.)
        first = _find(session, request)
        if first is None:
            raise
        session.rollback()
        return first
    return None


def _lock(session: Session, account_ids: list[int]) -> Sequence[Account]:
    # FOR UPDATE is not rendered on SQLite, where BEGIN IMMEDIATE already serialises writers;
    # populate_existing replaces balances the session may hold from an earlier read.
    query = (select(Account).where(col(Account.id).in_(account_ids)).order_by(col(Account.id))
             .with_for_update().execution_options(populate_existing=True))
    return session.exec(query).all()


def _find(session: Session, request: LedgerRequest) -> Posted | None:
    """The transaction this request was already posted as, or the reversal in its way."""
    first = session.exec(
        select(LedgerTransaction).where(LedgerTransaction.client_id == request.client_id)
    ).first()
    if first is None:
        if request.reverses_id is not None:
            _refuse_second_reversal(session, request.reverses_id)
        return None
    if not _same(session, first, request):
        raise IdempotencyConflictError(
            f"client id {request.client_id!r} was used for transaction {first.id}, "
            "which posted something else"
        )
    logger.info("replay of client id %s returns transaction %s", request.client_id, first.id)
    return Posted(first, replayed=True)


def _refuse_second_reversal(session: Session, original_id: int) -> None:
    earlier = session.exec(
        select(LedgerTransaction).where(LedgerTransaction.reverses_id == original_id)
    ).first()
    if earlier is not None:
        raise NotReversibleError(
            f"transaction {original_id} was already reversed by transaction {earlier.id}"
        )


def _same(session: Session, first: LedgerTransaction, request: LedgerRequest) -> bool:
    legs = session.exec(
        select(Posting.account_id, Posting.amount_cents)
        .where(Posting.transaction_id == first.id)
    ).all()
    return (first.school_id == request.school_id and first.kind == request.kind
            and first.reverses_id == request.reverses_id
            and Counter(map(tuple, legs)) == Counter(request.legs))
