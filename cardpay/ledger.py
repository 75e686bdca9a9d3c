"""The ledger's services: post balanced, idempotent transactions and reverse them, and
read balances. They book through `cardpay.booking`, the one write path of the ledger.

Each service call here commits its database transaction when it posts: the postings, the
pupils' cached balances, and anything the caller added to the session beforehand are
durable together or not at all. A replay (a client id posted before) rolls the
transaction back, so it changes nothing, not even what the caller added. A refusal (a
CardPayError) writes nothing and leaves the transaction open for the caller to commit what
it added (a refused tap's record) or roll back; a database error rolls it back.

On SQLite, give these functions a session from `school.db.immediate_session`: its BEGIN
IMMEDIATE takes the write lock before the first read, so two writers queue instead of one
failing with 'database is locked'. On PostgreSQL a pupil's account row is held from its
balance's UPDATE (which checks the floor) to the commit.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from cardpay.booking import (
    LedgerRequest,
    keeps_balance,
    ledger_request,
    reversal_request,
    write,
)
from cardpay.errors import (
    IdempotencyConflictError,
    InsufficientFundsError,
    InvalidTransactionError,
    NotReversibleError,
)
from cardpay.integrity import check_integrity
from cardpay.models import Account, AccountKind, LedgerTransaction, Posting, TransactionKind
from school.clock import Clock, utcnow

__all__ = ["Leg", "Posted", "available_cents", "balance_of", "balances", "check_integrity",
           "post", "reverse"]

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


def balances(session: Session, account_ids: Sequence[int]) -> dict[int, int]:
    """Each account's balance: a pupil's as kept on its row, any other's (meal revenue, a
    cash drawer...) as the sum of its postings, which no tap has to wait to update."""
    if not account_ids:
        return {}
    kept = dict(session.exec(
        select(Account.id, Account.balance_cents)
        .where(col(Account.id).in_(account_ids), Account.kind == AccountKind.PUPIL_LUNCH)
    ).all())
    summed = dict(session.exec(
        select(Posting.account_id, func.sum(Posting.amount_cents))
        .where(col(Posting.account_id).in_([a for a in account_ids if a not in kept]))
        .group_by(col(Posting.account_id))
    ).all())
    return {a: int(kept[a] if a in kept else summed.get(a, 0) or 0) for a in account_ids}


def balance_of(session: Session, account: Account) -> int:
    """The balance of one account (see `balances`)."""
    assert account.id is not None
    if keeps_balance(account.kind):
        return account.balance_cents
    return balances(session, [account.id])[account.id]


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
    return _write(session, request, memo=memo, actor_user_id=actor_user_id,
                  actor_device_id=actor_device_id, occurred_at=occurred_at,
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
    request = reversal_request(session.connection(), transaction.id, transaction.school_id,
                               client_id)
    return _write(session, request, memo=memo or f"reverses transaction {transaction.id}",
                  actor_user_id=actor_user_id, actor_device_id=actor_device_id,
                  occurred_at=None, enforce_floors=False, clock=clock)


def _write(session: Session, request: LedgerRequest, *, memo: str,
           actor_user_id: int | None, actor_device_id: int | None,
           occurred_at: datetime | None, enforce_floors: bool, clock: Clock) -> Posted:
    first = _find(session, request)
    if first is not None:
        session.rollback()  # a replay changes nothing, whichever way it is found
        return first
    try:
        session.flush()  # what the caller added goes first (a new account, a tap)
        booked = write(session.connection(), request, created_at=clock(),
                       occurred_at=occurred_at, memo=memo, actor_user_id=actor_user_id,
                       actor_device_id=actor_device_id, enforce_floors=enforce_floors)
        _refresh_balances(session, booked.balances)
        header = session.get_one(LedgerTransaction, booked.id)
        session.commit()
    except InsufficientFundsError:
        # On PostgreSQL a copy of this request may have committed while we waited for the
        # account's row, spending the money: then this is its replay, not a refusal.
        # (Under READ COMMITTED this new statement sees that commit; on SQLite, BEGIN
        # IMMEDIATE made the first look-up final.)
        first = _find(session, request)
        if first is None:
            raise
        session.rollback()
        return first
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


def _refresh_balances(session: Session, moved: Mapping[int, int]) -> None:
    """Give the accounts this session holds the balances the booking left (the session's
    objects would otherwise keep what they read before)."""
    for account in session.identity_map.values():
        if isinstance(account, Account) and account.id is not None and account.id in moved:
            set_committed_value(account, "balance_cents", moved[account.id])


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
