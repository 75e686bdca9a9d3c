"""The one way money is booked: `book` writes a balanced transaction inside the caller's
database transaction, and `book_reversal` undoes one. Every writer of the ledger (the
till, `cardpay.ledger.post` and `reverse` for the office, top-ups and leavers) goes
through here.

What the database holds, and who keeps it so:

- postings (immutable legs) and their transaction, whose legs sum to zero: checked here
  and again by the database at commit (migration 0002);
- a pupil's balance, cached on the account's row and moved by the same transaction, with
  the account's floor enforced in that UPDATE, so no race slips a debit under it;
- a system account's balance (meal revenue, cash drawers, clearing, refunds...) is *not*
  kept on its row: it is the sum of its postings (`cardpay.ledger.balances`). Every tap of
  a school credits meal revenue; updating one row for all of them made each tap wait for
  the one before on PostgreSQL (a hot row). The database refuses a non-zero cached
  balance or a floor on such an account (migration 0011).

Nothing here looks for replays, commits or rolls back: a client id booked before fails on
the database's unique constraint (`IntegrityError`), and a refusal (`InsufficientFundsError`,
`InvalidTransactionError`, `NotReversibleError`) leaves the caller's transaction or
savepoint to roll back. Balances move first, in account id order, so two bookings over
the same accounts cannot deadlock on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import BindParameter, Connection, bindparam, insert, or_, select, update

from cardpay.errors import InsufficientFundsError, InvalidTransactionError, NotReversibleError
from cardpay.models import Account, AccountKind, LedgerTransaction, Posting, TransactionKind
from school.db import DriverStatement

__all__ = ["AccountIds", "AccountRef", "Booked", "LedgerRequest", "book", "book_reversal",
           "booked_id", "keeps_balance", "ledger_request", "reversal_request", "write"]

MEMO_MAX = 500  # ledger_transaction.memo's length


class AccountRef(Protocol):
    """What booking needs of an account: an `Account`, or its `AccountIds`."""

    @property
    def id(self) -> int | None: ...

    @property
    def school_id(self) -> int: ...

    @property
    def kind(self) -> AccountKind: ...


@dataclass(frozen=True)
class AccountIds:
    id: int
    school_id: int
    kind: AccountKind


@dataclass(frozen=True)
class Booked:
    """A booked transaction: its id, and the new balance of each of its accounts that
    keeps one (a pupil's), by account id."""

    id: int
    balances: Mapping[int, int]


def keeps_balance(kind: AccountKind) -> bool:
    """Whether an account of this kind keeps its balance on its row (a pupil's, which has
    a floor to enforce) rather than deriving it from its postings."""
    return kind is AccountKind.PUPIL_LUNCH


@dataclass(frozen=True)
class LedgerRequest:
    school_id: int
    kind: TransactionKind
    client_id: str
    legs: tuple[tuple[int, int], ...]  # (account id, cents)
    reverses_id: int | None = None
    kept: frozenset[int] = frozenset()  # the legs' accounts that keep their balance

    def deltas(self) -> dict[int, int]:
        """Net change per account keeping its balance, without those left unchanged."""
        deltas: dict[int, int] = {}
        for account_id, cents in self.legs:
            if account_id in self.kept:
                deltas[account_id] = deltas.get(account_id, 0) + cents
        return {account_id: d for account_id, d in deltas.items() if d != 0}


def ledger_request(school_id: int, kind: TransactionKind, client_id: str,
                   legs: Sequence[tuple[AccountRef, int]],
                   reverses_id: int | None = None) -> LedgerRequest:
    """Check a transaction's legs (non-zero int cents, accounts of the school, summing to
    zero) and its client id; raise InvalidTransactionError otherwise."""
    if not client_id or len(client_id) > 128:
        raise InvalidTransactionError("a client id of 1 to 128 characters is required")
    if len(legs) < 2:
        raise InvalidTransactionError("a transaction needs at least two legs")
    pairs, kept = [], set()
    for account, cents in legs:
        # bool is an int subclass and float is a bug: both are refused.
        if type(cents) is not int or cents == 0:
            raise InvalidTransactionError(f"a leg must be a non-zero int of cents: {cents!r}")
        if account.id is None or account.school_id != school_id:
            raise InvalidTransactionError(f"account {account.id} is not of school {school_id}")
        pairs.append((account.id, cents))
        if keeps_balance(account.kind):
            kept.add(account.id)
    if sum(cents for _, cents in pairs) != 0:
        raise InvalidTransactionError(f"legs sum to {sum(c for _, c in pairs)} cents, not 0")
    return LedgerRequest(school_id, kind, client_id, tuple(pairs), reverses_id,
                         frozenset(kept))


_ACCOUNT = Account.__table__  # type: ignore[attr-defined]
_TRANSACTION = LedgerTransaction.__table__  # type: ignore[attr-defined]
_POSTING = Posting.__table__  # type: ignore[attr-defined]
_delta: BindParameter[int] = bindparam("delta")
_move = (
    update(_ACCOUNT)
    .where(_ACCOUNT.c.id == bindparam("account_id"))
    .values(balance_cents=_ACCOUNT.c.balance_cents + _delta)
    .returning(_ACCOUNT.c.balance_cents)
)
_MOVE = DriverStatement(_move)
# A debit passes only if it leaves the balance at or above the floor; credits always pass,
# even to an account below its floor (late offline taps), so topping it up always works.
_MOVE_ABOVE_FLOOR = DriverStatement(_move.where(
    or_(
        _delta >= 0,
        _ACCOUNT.c.floor_cents.is_(None),
        _ACCOUNT.c.balance_cents + _delta >= _ACCOUNT.c.floor_cents,
    )
))
_BALANCE = DriverStatement(select(_ACCOUNT.c.balance_cents, _ACCOUNT.c.floor_cents).where(
    _ACCOUNT.c.id == bindparam("account_id")
))
_NEW_TRANSACTION = DriverStatement(
    insert(_TRANSACTION).returning(_TRANSACTION.c.id),
    keys=["school_id", "kind", "client_id", "created_at", "occurred_at", "memo",
          "actor_user_id", "actor_device_id", "reverses_id"],
)
_NEW_POSTING = DriverStatement(insert(_POSTING).inline(),  # no RETURNING of its id
                               keys=["transaction_id", "account_id", "amount_cents"])
_BY_CLIENT_ID = DriverStatement(select(_TRANSACTION.c.id).where(
    _TRANSACTION.c.client_id == bindparam("client_id")
))
_ORIGINAL = DriverStatement(
    select(_TRANSACTION.c.school_id, _TRANSACTION.c.kind, _TRANSACTION.c.reverses_id)
    .where(_TRANSACTION.c.id == bindparam("id"))
)
_REVERSED_BY = DriverStatement(select(_TRANSACTION.c.id).where(
    _TRANSACTION.c.reverses_id == bindparam("id")
))
_LEGS = DriverStatement(
    select(_POSTING.c.account_id, _ACCOUNT.c.school_id, _ACCOUNT.c.kind,
           _POSTING.c.amount_cents)
    .join(_ACCOUNT, _ACCOUNT.c.id == _POSTING.c.account_id)
    .where(_POSTING.c.transaction_id == bindparam("id"))
    .order_by(_POSTING.c.id)
)


def book(conn: Connection, *, school_id: int, kind: TransactionKind, client_id: str,
         legs: Sequence[tuple[AccountRef, int]], created_at: datetime,
         occurred_at: datetime | None = None, memo: str = "",
         actor_user_id: int | None = None, actor_device_id: int | None = None,
         enforce_floors: bool = True) -> Booked:
    """Book `legs` (signed cents per account, summing to zero) as one transaction in the
    caller's database transaction. Never commits.

    `client_id` is the idempotency key (unique: a second booking under it raises
    IntegrityError). With `enforce_floors`, a debit that would take a pupil's account
    below its floor raises InsufficientFundsError before anything is written; a tap
    served offline is booked without, since the meal was eaten. `occurred_at` is when it
    happened, if before `created_at` (an offline tap)."""
    if kind is TransactionKind.REVERSAL:
        raise InvalidTransactionError("reversals are booked by book_reversal(), not book()")
    return write(conn, ledger_request(school_id, kind, client_id, legs),
                 created_at=created_at, occurred_at=occurred_at, memo=memo,
                 actor_user_id=actor_user_id, actor_device_id=actor_device_id,
                 enforce_floors=enforce_floors)


def book_reversal(conn: Connection, *, original_id: int, client_id: str,
                  created_at: datetime, reason: str = "", actor_user_id: int | None = None,
                  actor_device_id: int | None = None) -> Booked:
    """Book the exact opposite of transaction `original_id`, pointing at it, with `reason`
    as its memo. Never commits.

    Floors are not enforced: undoing a mistake must always be possible, even when the money
    has been spent since (the account then shows what is owed). A transaction is reversed
    at most once (NotReversibleError; the database's unique `reverses_id` settles a race
    with IntegrityError), and a reversal is not itself reversed: book the original again."""
    _check_memo(reason)
    found = _ORIGINAL.first(conn, {"id": original_id})
    if found is None:
        raise InvalidTransactionError(f"no transaction {original_id} to reverse")
    school_id, kind, _ = found
    if TransactionKind(kind) is TransactionKind.REVERSAL:
        raise NotReversibleError(f"transaction {original_id} is a reversal; "
                                 "post the original again instead of reversing it")
    earlier = _REVERSED_BY.first(conn, {"id": original_id})
    if earlier is not None:
        raise NotReversibleError(
            f"transaction {original_id} was already reversed by transaction {earlier[0]}")
    return write(conn, reversal_request(conn, original_id, school_id, client_id),
                 created_at=created_at, memo=reason or f"reverses transaction {original_id}",
                 actor_user_id=actor_user_id, actor_device_id=actor_device_id,
                 enforce_floors=False)


def reversal_request(conn: Connection, original_id: int, school_id: int,
                     client_id: str) -> LedgerRequest:
    """The request that reverses transaction `original_id` (its legs, negated)."""
    legs = [(AccountIds(account_id, account_school, AccountKind(kind)), -cents)
            for account_id, account_school, kind, cents
            in _LEGS.all(conn, {"id": original_id})]
    return ledger_request(school_id, TransactionKind.REVERSAL, client_id, legs,
                          reverses_id=original_id)


def booked_id(conn: Connection, client_id: str) -> int | None:
    """The id of the transaction booked under `client_id` (a meal's is `tap:<tap id>`)."""
    found = _BY_CLIENT_ID.first(conn, {"client_id": client_id})
    return None if found is None else int(found[0])


def write(conn: Connection, request: LedgerRequest, *, created_at: datetime,
          occurred_at: datetime | None = None, memo: str = "",
          actor_user_id: int | None = None, actor_device_id: int | None = None,
          enforce_floors: bool = True) -> Booked:
    """Write a checked request (see `book`); for `book`, `book_reversal` and
    `cardpay.ledger`, which made the request itself."""
    _check_memo(memo)
    balances = _move_balances(conn, request.deltas(), enforce_floors=enforce_floors)
    inserted = _NEW_TRANSACTION.first(conn, {
        "school_id": request.school_id, "kind": request.kind, "client_id": request.client_id,
        "created_at": created_at, "occurred_at": occurred_at or created_at, "memo": memo,
        "actor_user_id": actor_user_id, "actor_device_id": actor_device_id,
        "reverses_id": request.reverses_id,
    })
    assert inserted is not None
    transaction_id = int(inserted[0])
    _NEW_POSTING.many(conn, [{"transaction_id": transaction_id, "account_id": account_id,
                              "amount_cents": cents} for account_id, cents in request.legs])
    return Booked(transaction_id, balances)


def _check_memo(memo: str) -> None:
    if len(memo) > MEMO_MAX:
        raise InvalidTransactionError(f"a memo (or reason) of at most {MEMO_MAX} characters")


def _move_balances(conn: Connection, deltas: Mapping[int, int], *,
                   enforce_floors: bool) -> dict[int, int]:
    move = _MOVE_ABOVE_FLOOR if enforce_floors else _MOVE
    balances: dict[int, int] = {}
    for account_id, delta in sorted(deltas.items()):
        moved = move.first(conn, {"account_id": account_id, "delta": delta})
        if moved is None:
            # Put back what this request moved already (a correction over two pupils),
            # so that a caller committing its refusal commits no half of it.
            for done in balances:
                _MOVE.first(conn, {"account_id": done, "delta": -deltas[done]})
            found = _BALANCE.first(conn, {"account_id": account_id})
            assert found is not None, f"no account {account_id}"
            raise InsufficientFundsError(account_id, found[0], found[1], delta)
        balances[account_id] = int(moved[0])
    return balances
