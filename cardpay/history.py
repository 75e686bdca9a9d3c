"""A pupil's account as people read it: the lines of its history with the balance after
each, and a statement over a range of days with its opening and closing balance.

Lines follow the order in which transactions were posted, which is the order the balance
moved in; each also carries when it happened (a meal served offline is posted later).
Days are the school's, in its time zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from cardpay.account_models import Receipt
from cardpay.models import Account, LedgerTransaction, Posting, TransactionKind
from school.models import Pupil


@dataclass(frozen=True)
class Line:
    transaction_id: int
    kind: TransactionKind
    occurred_at: datetime
    posted_at: datetime
    amount_cents: int
    balance_after_cents: int
    memo: str
    reverses_id: int | None
    reversed_by_id: int | None
    receipt_id: int | None
    receipt_number: int | None


def utc_range(timezone: str, first: date, last: date) -> tuple[datetime, datetime]:
    """The school days `first` to `last` (inclusive) as a UTC interval [start, end)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(first, time(0), tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def lines(session: Session, account: Account, *, since: datetime | None = None,
          until: datetime | None = None, limit: int | None = None,
          newest_first: bool = True) -> list[Line]:
    """The account's postings posted in [since, until), with the balance after each."""
    running = (
        sa_select(col(Posting.id).label("posting_id"), col(Posting.transaction_id),
               col(Posting.amount_cents),
               func.sum(Posting.amount_cents).over(order_by=col(Posting.id)).label("after"))
        .where(col(Posting.account_id) == account.id)
    ).subquery()
    reversal = aliased(LedgerTransaction)
    query = (
        sa_select(running.c.amount_cents, running.c.after, LedgerTransaction,
               col(reversal.id), col(Receipt.id), col(Receipt.number))
        .join(LedgerTransaction, col(LedgerTransaction.id) == running.c.transaction_id)
        .join(reversal, col(reversal.reverses_id) == col(LedgerTransaction.id), isouter=True)
        .join(Receipt, col(Receipt.client_id) == col(LedgerTransaction.client_id), isouter=True)
        .order_by(running.c.posting_id.desc() if newest_first else running.c.posting_id)
    )
    if since is not None:
        query = query.where(col(LedgerTransaction.created_at) >= since)
    if until is not None:
        query = query.where(col(LedgerTransaction.created_at) < until)
    if limit is not None:
        query = query.limit(limit)
    return [
        Line(transaction_id=txn.id, kind=txn.kind, occurred_at=txn.occurred_at,
             posted_at=txn.created_at, amount_cents=int(amount), balance_after_cents=int(after),
             memo=txn.memo, reverses_id=txn.reverses_id, reversed_by_id=reversed_by,
             receipt_id=receipt_id, receipt_number=number)
        for amount, after, txn, reversed_by, receipt_id, number in session.execute(query).all()
    ]


def balance_before(session: Session, account: Account, moment: datetime) -> int:
    total = session.exec(
        select(func.coalesce(func.sum(Posting.amount_cents), literal(0)))
        .join(LedgerTransaction, col(LedgerTransaction.id) == col(Posting.transaction_id))
        .where(Posting.account_id == account.id, col(LedgerTransaction.created_at) < moment)
    ).one()
    return int(total)


@dataclass(frozen=True)
class Statement:
    pupil: Pupil
    first: date
    last: date
    opening_cents: int
    closing_cents: int
    lines: list[Line]
    totals: dict[TransactionKind, int] = field(default_factory=dict)


def statement(session: Session, *, pupil: Pupil, account: Account | None, timezone: str,
              first: date, last: date) -> Statement:
    """The account from the start of `first` to the end of `last`, oldest line first."""
    if account is None:
        return Statement(pupil, first, last, 0, 0, [])
    start, end = utc_range(timezone, first, last)
    opening = balance_before(session, account, start)
    found = lines(session, account, since=start, until=end, newest_first=False)
    totals: dict[TransactionKind, int] = {}
    for line in found:
        totals[line.kind] = totals.get(line.kind, 0) + line.amount_cents
    closing = opening + sum(line.amount_cents for line in found)
    return Statement(pupil, first, last, opening, closing, found, totals)
