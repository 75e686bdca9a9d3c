"""Posting, replaying and reversing ledger transactions, alone and all at once."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from cardpay.errors import (
    IdempotencyConflictError,
    InsufficientFundsError,
    InvalidTransactionError,
    NotReversibleError,
)
from cardpay.ledger import Posted, available_cents, balance_of, check_integrity, post, reverse
from cardpay.models import Account, LedgerTransaction, Posting, TransactionKind
from school.db import immediate_session
from tests.cardpay.conftest import Books, open_books

TOPUP, MEAL = TransactionKind.TOPUP, TransactionKind.MEAL


def _topup(session: Session, books: Books, cents: int, client_id: str, pupil: int = 0) -> Posted:
    return post(session=session, school_id=books.school_id, kind=TOPUP, client_id=client_id,
                legs=[(books.lunch[pupil], cents), (books.cash, -cents)])


def _meal(session: Session, books: Books, cents: int, client_id: str, pupil: int = 0,
          **kwargs: Any) -> Posted:
    return post(session=session, school_id=books.school_id, kind=MEAL, client_id=client_id,
                legs=[(books.lunch[pupil], -cents), (books.revenue, cents)], **kwargs)


def _count(session: Session, model: type[Any]) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())


def test_postings_move_balances_and_add_up(session: Session, books: Books) -> None:
    _topup(session, books, 2000, "form-1")
    posted = _meal(session, books, 350, "tap-1")
    assert not posted.replayed
    assert posted.transaction.kind is MEAL
    assert books.lunch[0].balance_cents == 1650
    assert balance_of(session, books.revenue) == 350
    assert balance_of(session, books.cash) == -2000
    assert available_cents(books.lunch[0]) == 1650
    assert check_integrity(session) == []


def test_a_system_account_keeps_no_balance_on_its_row(any_engine: Engine) -> None:
    """Meal revenue is summed from its postings: no tap updates its row, and the database
    refuses a balance or a floor written on it."""
    with Session(any_engine) as session:
        books = open_books(session)
        _topup(session, books, 2000, "form-1")
        _meal(session, books, 350, "tap-1")
        _meal(session, books, 350, "tap-2")
        session.expire_all()
        assert (books.revenue.balance_cents, balance_of(session, books.revenue)) == (0, 700)
        for statement in ("UPDATE account SET balance_cents = 700 WHERE id = :id",
                          "UPDATE account SET floor_cents = 0 WHERE id = :id"):
            with pytest.raises(IntegrityError):
                session.execute(text(statement), {"id": books.revenue.id})
            session.rollback()
        assert check_integrity(session) == []


def test_a_refused_correction_over_two_pupils_moves_neither(
    session: Session, books: Books
) -> None:
    """The first pupil's credit was already made when the second's debit met its floor:
    the caller may still commit its own work, and no half of the correction lands."""
    _topup(session, books, 100, "form-1", pupil=1)
    assert (books.lunch[0].id or 0) < (books.lunch[1].id or 0)  # credited first
    with pytest.raises(InsufficientFundsError):
        post(session=session, school_id=books.school_id, kind=TransactionKind.CORRECTION,
             client_id="fix-1", legs=[(books.lunch[0], 1000), (books.lunch[1], -1000)])
    session.commit()
    session.expire_all()
    assert [a.balance_cents for a in books.lunch] == [0, 100]
    assert check_integrity(session) == []


def test_a_repeated_client_id_returns_the_first_and_posts_nothing(
    session: Session, books: Books
) -> None:
    _topup(session, books, 2000, "form-1")
    first = _meal(session, books, 350, "tap-1")
    again = _meal(session, books, 350, "tap-1")
    assert again.replayed
    assert again.transaction.id == first.transaction.id
    assert books.lunch[0].balance_cents == 1650
    assert _count(session, Posting) == 4


def test_a_client_id_reused_for_something_else_is_refused(
    session: Session, books: Books
) -> None:
    _topup(session, books, 2000, "form-1")
    _meal(session, books, 350, "tap-1")
    with pytest.raises(IdempotencyConflictError):
        _meal(session, books, 400, "tap-1")
    with pytest.raises(IdempotencyConflictError):
        _meal(session, books, 350, "tap-1", pupil=1)


@pytest.mark.parametrize("legs", [
    lambda b: [(b.lunch[0], 100), (b.cash, -99)],
    lambda b: [(b.lunch[0], 100)],
    lambda b: [],
    lambda b: [(b.lunch[0], 1.5), (b.cash, -1.5)],
    lambda b: [(b.lunch[0], True), (b.cash, -1)],
    lambda b: [(b.lunch[0], 0), (b.cash, 0)],
])
def test_bad_legs_are_refused_and_nothing_is_written(
    session: Session, books: Books, legs: Callable[[Books], Any]
) -> None:
    with pytest.raises(InvalidTransactionError):
        post(session=session, school_id=books.school_id, kind=TOPUP, client_id="x",
             legs=legs(books))
    assert _count(session, LedgerTransaction) == 0


def test_an_account_of_another_school_is_refused(session: Session, books: Books) -> None:
    other = open_books(session, slug="autre")
    with pytest.raises(InvalidTransactionError, match="not of school"):
        post(session=session, school_id=books.school_id, kind=TOPUP, client_id="x",
             legs=[(books.lunch[0], 100), (other.cash, -100)])


def test_a_debit_below_the_floor_is_refused(session: Session, books: Books) -> None:
    _topup(session, books, 300, "form-1")
    with pytest.raises(InsufficientFundsError) as refused:
        _meal(session, books, 350, "tap-1")
    assert refused.value.balance_cents == 300
    session.rollback()
    _meal(session, books, 450, "tap-2", pupil=1)  # Hugo may owe up to 5.00
    with pytest.raises(InsufficientFundsError):
        _meal(session, books, 51, "tap-3", pupil=1)
    session.rollback()
    _meal(session, books, 50, "tap-4", pupil=1)
    assert [a.balance_cents for a in books.lunch] == [300, -500]
    assert _count(session, LedgerTransaction) == 3


def test_a_refusal_leaves_the_callers_work_to_commit(session: Session, books: Books) -> None:
    from school.audit import record

    record(session, action="till.refused", school_id=books.school_id)
    with pytest.raises(InsufficientFundsError):
        _meal(session, books, 350, "tap-1")
    session.commit()
    assert session.execute(text("SELECT action FROM audit_event")).all() == [("till.refused",)]


def test_an_offline_tap_may_go_below_the_floor_and_a_topup_still_lands(
    session: Session, books: Books
) -> None:
    _meal(session, books, 350, "tap-offline", enforce_floors=False)
    assert books.lunch[0].balance_cents == -350
    _topup(session, books, 200, "form-1")
    assert books.lunch[0].balance_cents == -150
    assert available_cents(books.lunch[0]) == 0


def test_a_reversal_undoes_once(session: Session, books: Books) -> None:
    topup = _topup(session, books, 2000, "form-1").transaction
    _meal(session, books, 1500, "tap-1")
    undo = reverse(session=session, transaction=topup, client_id="undo-1")
    assert undo.transaction.reverses_id == topup.id
    assert undo.transaction.kind is TransactionKind.REVERSAL
    assert books.lunch[0].balance_cents == -1500  # floors do not stop a correction
    assert balance_of(session, books.cash) == 0
    assert reverse(session=session, transaction=topup, client_id="undo-1").replayed
    with pytest.raises(NotReversibleError, match="already reversed"):
        reverse(session=session, transaction=topup, client_id="undo-2")
    with pytest.raises(NotReversibleError, match="is a reversal"):
        reverse(session=session, transaction=undo.transaction, client_id="undo-3")
    with pytest.raises(InvalidTransactionError):
        post(session=session, school_id=books.school_id, kind=TransactionKind.REVERSAL,
             client_id="sneaky", legs=[(books.lunch[0], 1), (books.cash, -1)])
    assert check_integrity(session) == []


def test_check_integrity_names_what_is_wrong(engine: Engine, session: Session,
                                             books: Books) -> None:
    topup = _topup(session, books, 2000, "form-1").transaction
    lunch, cash = books.lunch[0].id, books.cash.id
    # Only a connection that opts out of foreign keys can store what the database refuses;
    # check_integrity still sees it.
    raw = sqlite3.connect(str(engine.url.database), isolation_level=None)
    raw.execute("PRAGMA foreign_keys=OFF")
    raw.execute("BEGIN")
    raw.execute("UPDATE account SET balance_cents = 5 WHERE id = ?", (lunch,))
    for client_id, legs, reverses in (("odd", [(lunch, 100)], None),
                                      ("half", [(lunch, -1000), (cash, 1000)], topup.id)):
        txn = raw.execute(
            "INSERT INTO ledger_transaction (school_id, kind, client_id, created_at, "
            "occurred_at, memo, reverses_id) VALUES (?, 'correction', ?, CURRENT_TIMESTAMP, "
            "CURRENT_TIMESTAMP, '', ?) RETURNING id", (books.school_id, client_id, reverses),
        ).fetchone()[0]
        for account, cents in legs:
            raw.execute("INSERT INTO posting (transaction_id, account_id, amount_cents) "
                        "VALUES (?, ?, ?)", (txn, account, cents))
    raw.execute("COMMIT")
    raw.close()
    session.rollback()  # end the read transaction whose snapshot predates the raw writes
    problems = check_integrity(session)
    assert any(p.startswith(f"account {lunch} (pupil_lunch of pupil") for p in problems)
    assert any("client id odd): 1 posting(s) summing to 100 cents" in p for p in problems)
    assert any(f"does not exactly reverse transaction {topup.id}" in p for p in problems)


def _in_threads(n: int, work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # collected for the test to show
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    return errors


def _concurrent_books(engine: Engine) -> tuple[int, int, int]:
    """School, pupil account and revenue ids, with 10.00 on the pupil's account."""
    with Session(engine) as session:
        books = open_books(session)
        _topup(session, books, 1000, "form-1")
        assert books.lunch[0].id is not None
        assert books.revenue.id is not None
        return books.school_id, books.lunch[0].id, books.revenue.id


def _tap(engine: Engine, ids: tuple[int, int, int], client_id: str, cents: int = 300) -> Posted:
    school_id, lunch_id, revenue_id = ids
    with immediate_session(engine) as session:
        lunch, revenue = session.get(Account, lunch_id), session.get(Account, revenue_id)
        assert lunch is not None
        assert revenue is not None
        return post(session=session, school_id=school_id, kind=MEAL, client_id=client_id,
                    legs=[(lunch, -cents), (revenue, cents)])


def _balance(engine: Engine, account_id: int) -> int:
    with Session(engine) as session:
        account = session.get(Account, account_id)
        assert account is not None
        assert check_integrity(session) == []
        return balance_of(session, account)


def test_the_same_tap_sent_at_once_is_posted_once(any_engine: Engine) -> None:
    """It spends the whole balance, so a copy that waited for the first one's lock must
    be answered as a replay, not refused for want of money."""
    ids = _concurrent_books(any_engine)
    replays = []

    def tap(_: int) -> None:
        replays.append(_tap(any_engine, ids, "tap-same", cents=1000).replayed)

    assert _in_threads(8, tap) == []
    assert sorted(replays) == [False] + [True] * 7
    assert _balance(any_engine, ids[1]) == 0


def test_concurrent_taps_lose_no_update_and_respect_the_floor(any_engine: Engine) -> None:
    ids = _concurrent_books(any_engine)
    refused = []

    def tap(i: int) -> None:
        try:
            _tap(any_engine, ids, f"tap-{i}")
        except InsufficientFundsError:
            refused.append(i)

    assert _in_threads(6, tap) == []
    assert _balance(any_engine, ids[1]) == 100  # 1000 - 3 x 300: three served
    assert len(refused) == 3


def test_the_booking_primitive_reverses_once_and_finds_by_client_id(any_engine: Engine) -> None:
    """What the till's reconciliation calls inside its own transaction: the meal found by
    its client id, reversed with a reason; never twice, never a reversal, never nothing."""
    from datetime import UTC, datetime

    from cardpay.booking import book, book_reversal, booked_id

    at = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    with Session(any_engine) as session:
        books = open_books(session)
        _topup(session, books, 1000, "form-1")
        with any_engine.begin() as conn:
            meal = book(conn, school_id=books.school_id, kind=MEAL, client_id="tap:t-1",
                        legs=[(books.lunch[0], -350), (books.revenue, 350)], created_at=at)
            assert meal.balances == {books.lunch[0].id: 650}
        with any_engine.begin() as conn:
            assert booked_id(conn, "tap:t-1") == meal.id
            assert booked_id(conn, "tap:t-2") is None
            undo = book_reversal(conn, original_id=meal.id, client_id="undo:t-1",
                                 created_at=at, reason="the till refused this meal")
            assert undo.balances == {books.lunch[0].id: 1000}
        with any_engine.begin() as conn:
            with pytest.raises(NotReversibleError, match="already reversed"):
                book_reversal(conn, original_id=meal.id, client_id="undo:t-1b", created_at=at)
            with pytest.raises(NotReversibleError, match="is a reversal"):
                book_reversal(conn, original_id=undo.id, client_id="undo:u", created_at=at)
            with pytest.raises(InvalidTransactionError, match="at most 500"):
                book_reversal(conn, original_id=meal.id, client_id="undo:long",
                              created_at=at, reason="x" * 501)
            with pytest.raises(InvalidTransactionError, match="no transaction"):
                book_reversal(conn, original_id=undo.id + 100, client_id="undo:x",
                              created_at=at)
        session.rollback()  # end the session's read, older than the bookings
        reversal = session.get_one(LedgerTransaction, undo.id)
        assert (reversal.reverses_id, reversal.memo) == (meal.id, "the till refused this meal")
        assert (books.lunch[0].balance_cents, balance_of(session, books.revenue)) == (1000, 0)
        assert check_integrity(session) == []
