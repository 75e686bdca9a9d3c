"""Random runs of top-ups, meals, refunds, reversals and replays keep the books exact.

After every step: each transaction sums to zero and each balance equals its postings
(check_integrity), each balance equals what a plain model of the rules expects, no client
id was posted twice, no transaction was reversed twice, and no debit made online took an
account below its floor.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from cardpay.booking import book, book_reversal, booked_id
from cardpay.errors import (
    IdempotencyConflictError,
    InsufficientFundsError,
    NotReversibleError,
)
from cardpay.ledger import Posted, balances, check_integrity, post, reverse
from cardpay.models import Account, LedgerTransaction, TransactionKind
from tests.cardpay.conftest import open_books

NOW = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
PUPIL = st.integers(0, 1)
PICK = st.integers(0, 10**6)


@dataclass(frozen=True)
class Call:
    """One request as a client sends it, so that it can be sent again unchanged."""

    client_id: str
    kind: TransactionKind
    legs: tuple[tuple[int, int], ...] = ()  # (account id, cents)
    enforce_floors: bool = True
    reverses: int | None = None


class LedgerMachine(RuleBasedStateMachine):
    engine: ClassVar[Engine]
    schools: ClassVar[itertools.count[int]] = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.session = Session(self.engine)
        self.books = open_books(self.session, slug=f"p{next(self.schools)}")
        accounts = [*self.books.lunch, self.books.revenue, self.books.cash, self.books.clearing]
        self.floor = {a.id: a.floor_cents for a in accounts}
        self.balance = {a.id: 0 for a in accounts}
        self.calls: list[Call] = []
        self.posted: dict[str, int] = {}  # client id -> transaction id
        self.legs_of: dict[int, tuple[tuple[int, int], ...]] = {}
        self.reversed: set[int] = set()
        self.ids = itertools.count()

    def teardown(self) -> None:
        self.session.close()

    def _lunch(self, pupil: int) -> int:
        account_id = self.books.lunch[pupil].id
        assert account_id is not None
        return account_id

    def _id(self, prefix: str) -> str:
        return f"{self.books.school_id}-{prefix}-{next(self.ids)}"

    @rule(pupil=PUPIL, cents=st.integers(1, 5000), online=st.booleans())
    def top_up(self, pupil: int, cents: int, online: bool) -> None:
        source = self.books.clearing if online else self.books.cash
        assert source.id is not None
        self._send(Call(self._id("topup"), TransactionKind.TOPUP,
                        ((self._lunch(pupil), cents), (source.id, -cents))))

    @rule(pupil=PUPIL, cents=st.integers(1, 800), offline=st.booleans())
    def meal(self, pupil: int, cents: int, offline: bool) -> None:
        assert self.books.revenue.id is not None
        self._send(Call(self._id("tap"), TransactionKind.MEAL,
                        ((self._lunch(pupil), -cents), (self.books.revenue.id, cents)),
                        enforce_floors=not offline))

    @rule(pupil=PUPIL, cents=st.integers(1, 800), offline=st.booleans())
    def till_meal(self, pupil: int, cents: int, offline: bool) -> None:
        """A meal as the till posts it: Core statements in the caller's transaction."""
        assert self.books.revenue.id is not None
        call = Call(self._id("tap"), TransactionKind.MEAL,
                    ((self._lunch(pupil), -cents), (self.books.revenue.id, cents)),
                    enforce_floors=not offline)
        expected = self._expect(call)
        conn = self.session.connection()
        try:
            booked = book(
                conn, school_id=self.books.school_id, kind=call.kind, client_id=call.client_id,
                legs=[(self.session.get_one(Account, a), c) for a, c in call.legs],
                created_at=NOW, enforce_floors=call.enforce_floors,
            )
        except InsufficientFundsError:
            self.session.rollback()
            assert expected == "InsufficientFundsError"
            return
        self.session.commit()
        assert expected == "posted"
        self.calls.append(call)
        self._record(call, Posted(self.session.get_one(LedgerTransaction, booked.id), False))

    @precondition(lambda self: any(c.client_id.split("-")[1] == "tap" and c.client_id
                                   in self.posted for c in self.calls))
    @rule(pick=PICK)
    def till_reverses_a_meal(self, pick: int) -> None:
        """A meal the till reports it refused after all, reversed as the reconciliation
        does it: found by its client id, reversed in the caller's transaction."""
        meals = sorted({c.client_id for c in self.calls
                        if c.client_id.split("-")[1] == "tap" and c.client_id in self.posted})
        client_id = meals[pick % len(meals)]
        conn = self.session.connection()
        original = booked_id(conn, client_id)
        assert original == self.posted[client_id]
        call = Call(self._id("undo"), TransactionKind.REVERSAL, enforce_floors=False,
                    reverses=original)
        expected = self._expect(call)
        try:
            booked = book_reversal(conn, original_id=original, client_id=call.client_id,
                                   created_at=NOW, reason="the till refused this meal")
        except NotReversibleError:
            self.session.rollback()
            assert expected == "NotReversibleError"
            return
        self.session.commit()
        assert expected == "posted"
        self.calls.append(call)
        reversal = self.session.get_one(LedgerTransaction, booked.id)
        assert (reversal.reverses_id, reversal.memo) == (original, "the till refused this meal")
        self._record(call, Posted(reversal, False))

    @rule(pupil=PUPIL, cents=st.integers(1, 3000))
    def refund(self, pupil: int, cents: int) -> None:
        assert self.books.cash.id is not None
        self._send(Call(self._id("refund"), TransactionKind.REFUND,
                        ((self._lunch(pupil), -cents), (self.books.cash.id, cents))))

    @precondition(lambda self: self.legs_of)
    @rule(pick=PICK)
    def reverse_one(self, pick: int) -> None:
        target = sorted(self.legs_of)[pick % len(self.legs_of)]
        self._send(Call(self._id("undo"), TransactionKind.REVERSAL, enforce_floors=False,
                        reverses=target))

    @precondition(lambda self: self.calls)
    @rule(pick=PICK)
    def replay(self, pick: int) -> None:
        self._send(self.calls[pick % len(self.calls)])

    @precondition(lambda self: any(c.legs and c.client_id in self.posted for c in self.calls))
    @rule(pick=PICK)
    def replay_with_other_legs(self, pick: int) -> None:
        done = [c for c in self.calls if c.legs and c.client_id in self.posted]
        call = done[pick % len(done)]
        doubled = replace(call, legs=tuple((a, 2 * c) for a, c in call.legs))
        try:
            self._execute(doubled)
        except IdempotencyConflictError:
            self.session.rollback()
        else:
            raise AssertionError("a client id was accepted for a different transaction")

    def _send(self, call: Call) -> None:
        self.calls.append(call)
        expected = self._expect(call)
        outcome, posted = self._outcome(call)
        assert outcome == expected, f"{call}: {outcome}, expected {expected}"
        if posted is None:
            return
        if posted.replayed:
            assert posted.transaction.id == self.posted[call.client_id]
            return
        self._record(call, posted)

    def _outcome(self, call: Call) -> tuple[str, Posted | None]:
        try:
            posted = self._execute(call)
        except (InsufficientFundsError, NotReversibleError) as exc:
            self.session.rollback()
            return type(exc).__name__, None
        return ("replayed" if posted.replayed else "posted"), posted

    def _expect(self, call: Call) -> str:
        if call.client_id in self.posted:
            return "replayed"
        if call.reverses is not None:
            if call.reverses in self.reversed or call.reverses not in self.legs_of \
                    or self._is_reversal(call.reverses):
                return "NotReversibleError"
            return "posted"
        if call.enforce_floors:
            for account_id, cents in call.legs:
                floor = self.floor[account_id]
                if cents < 0 and floor is not None and self.balance[account_id] + cents < floor:
                    return "InsufficientFundsError"
        return "posted"

    def _is_reversal(self, txn_id: int) -> bool:
        return any(c.reverses is not None and self.posted.get(c.client_id) == txn_id
                   for c in self.calls)

    def _execute(self, call: Call) -> Posted:
        if call.reverses is not None:
            target = self.session.get(LedgerTransaction, call.reverses)
            assert target is not None
            return reverse(session=self.session, transaction=target, client_id=call.client_id)
        legs = [(self.session.get_one(Account, a), cents) for a, cents in call.legs]
        return post(session=self.session, school_id=self.books.school_id, kind=call.kind,
                    client_id=call.client_id, legs=legs, enforce_floors=call.enforce_floors)

    def _record(self, call: Call, posted: Posted) -> None:
        txn_id = posted.transaction.id
        assert txn_id is not None
        legs = call.legs
        if call.reverses is not None:
            legs = tuple((a, -c) for a, c in self.legs_of[call.reverses])
            self.reversed.add(call.reverses)
        self.posted[call.client_id] = txn_id
        self.legs_of[txn_id] = legs
        for account_id, cents in legs:
            self.balance[account_id] += cents
            floor = self.floor[account_id]
            if call.enforce_floors and cents < 0 and floor is not None:
                assert self.balance[account_id] >= floor, "an online debit broke the floor"

    @invariant()
    def books_add_up(self) -> None:
        self.session.expire_all()
        assert check_integrity(self.session) == []
        assert balances(self.session, list(self.balance)) == self.balance
        posted = self.session.exec(
            select(func.count()).select_from(LedgerTransaction)
            .where(LedgerTransaction.school_id == self.books.school_id)
        ).one()
        assert posted == len(self.posted), "a replay was posted twice"
        twice = self.session.execute(text(
            "SELECT reverses_id FROM ledger_transaction WHERE reverses_id IS NOT NULL "
            "GROUP BY reverses_id HAVING COUNT(*) > 1")).all()
        assert twice == []
        assert self.session.exec(
            select(func.count()).select_from(LedgerTransaction)
            .where(col(LedgerTransaction.reverses_id).is_not(None),
                   LedgerTransaction.school_id == self.books.school_id)
        ).one() == len(self.reversed)


def test_random_histories_keep_the_books_exact(any_engine: Engine) -> None:
    LedgerMachine.engine = any_engine
    # Fewer runs on PostgreSQL, whose round trips cost more; the rules are the same.
    examples = 30 if any_engine.dialect.name == "sqlite" else 15
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=examples, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    ))
