"""The ledger's rules for a request, and its write as three Core statements inside the
caller's transaction: for the till, which cannot pay for the ORM on every tap.

`cardpay.ledger.post` is the service everyone else calls (it finds replays and commits);
`write` below does not look for replays and never commits or rolls back: the caller has
already made the client id unique under its lock (the till checks the tap id), and a
duplicate still fails on the database's unique constraint, leaving the caller's
transaction or savepoint to roll back. Floors are enforced in the balance update itself,
so no race can slip a debit under a floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import BindParameter, Connection, bindparam, insert, or_, select, update

from cardpay.errors import InsufficientFundsError, InvalidTransactionError
from cardpay.models import Account, LedgerTransaction, Posting, TransactionKind
from school.db import DriverStatement


class AccountRef(Protocol):
    """What the ledger needs of an account to check a leg: an `Account`, or its ids."""

    @property
    def id(self) -> int | None: ...

    @property
    def school_id(self) -> int: ...


@dataclass(frozen=True)
class AccountIds:
    id: int
    school_id: int


@dataclass(frozen=True)
class LedgerRequest:
    school_id: int
    kind: TransactionKind
    client_id: str
    legs: tuple[tuple[int, int], ...]  # (account id, cents)
    reverses_id: int | None = None

    def deltas(self) -> dict[int, int]:
        """Net change per account, without the accounts left unchanged."""
        deltas: dict[int, int] = {}
        for account_id, cents in self.legs:
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
    pairs = []
    for account, cents in legs:
        # bool is an int subclass and float is a bug: both are refused.
        if type(cents) is not int or cents == 0:
            raise InvalidTransactionError(f"a leg must be a non-zero int of cents: {cents!r}")
        if account.id is None or account.school_id != school_id:
            raise InvalidTransactionError(f"account {account.id} is not of school {school_id}")
        pairs.append((account.id, cents))
    if sum(cents for _, cents in pairs) != 0:
        raise InvalidTransactionError(f"legs sum to {sum(c for _, c in pairs)} cents, not 0")
    return LedgerRequest(school_id, kind, client_id, tuple(pairs), reverses_id)


_ACCOUNT = Account.__table__  # type: ignore[attr-defined]
_delta: BindParameter[int] = bindparam("delta")
# A debit passes only if it leaves the balance at or above the floor; credits always pass.
_TRANSACTION = LedgerTransaction.__table__  # type: ignore[attr-defined]
_POSTING = Posting.__table__  # type: ignore[attr-defined]
_move = (
    update(_ACCOUNT)
    .where(_ACCOUNT.c.id == bindparam("account_id"))
    .values(balance_cents=_ACCOUNT.c.balance_cents + _delta)
)
_MOVE = DriverStatement(_move)
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


def write(conn: Connection, request: LedgerRequest, *, created_at: datetime,
          occurred_at: datetime | None = None, memo: str = "",
          actor_user_id: int | None = None, actor_device_id: int | None = None,
          enforce_floors: bool = True) -> int:
    """Post `request` in the caller's transaction; return the new transaction's id.

    Balances move first, in account id order (the order `ledger.post` locks them in on
    PostgreSQL), so that a debit refused by its floor raises InsufficientFundsError
    before anything else is written; the caller must still roll back whatever it wrote
    itself. Nothing here commits."""
    move = _MOVE_ABOVE_FLOOR if enforce_floors else _MOVE
    for account_id, delta in sorted(request.deltas().items()):
        if move.rowcount(conn, {"account_id": account_id, "delta": delta}) != 1:
            found = _BALANCE.first(conn, {"account_id": account_id})
            assert found is not None, f"no account {account_id}"
            raise InsufficientFundsError(account_id, found[0], found[1], delta)
    inserted = _NEW_TRANSACTION.first(conn, {
        "school_id": request.school_id, "kind": request.kind, "client_id": request.client_id,
        "created_at": created_at, "occurred_at": occurred_at or created_at, "memo": memo,
        "actor_user_id": actor_user_id, "actor_device_id": actor_device_id,
        "reverses_id": request.reverses_id,
    })
    assert inserted is not None
    transaction_id = int(inserted[0])
    for account_id, cents in request.legs:
        _NEW_POSTING.rowcount(conn, {"transaction_id": transaction_id,
                                     "account_id": account_id, "amount_cents": cents})
    return transaction_id
