"""The database itself refuses broken ledger and card writes, whoever sends them.

Every test here bypasses cardpay's services and writes raw SQL, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from school.migrate import alembic_config, upgrade

Params = dict[str, Any]


def _run(conn: Connection, sql: str, **params: Any) -> Any:
    return conn.execute(text(sql), params)


def _scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return _run(conn, sql, **params).scalar()


@pytest.fixture
def ids(any_engine: Engine) -> Params:
    return _seed(any_engine)


def _seed(engine: Engine) -> Params:
    """A school, a pupil, and the pupil's account, revenue and the office cash drawer."""
    with engine.begin() as conn:
        school = _run(conn, "INSERT INTO school (slug, name, timezone, currency, locale, "
                      "created_at) VALUES ('s', 'S', 'Europe/Paris', 'EUR', 'fr', "
                      "CURRENT_TIMESTAMP) RETURNING id").scalar()
        pupil = _run(conn, "INSERT INTO pupil (school_id, external_ref, first_name, last_name,"
                     " allergies, diet_notes, tariff_band, created_at) VALUES (:s, 'r', 'A', "
                     "'B', '', '', '', CURRENT_TIMESTAMP) RETURNING id", s=school).scalar()
        accounts = {}
        for kind, pupil_id in (("pupil_lunch", pupil), ("meal_revenue", None),
                               ("cash_drawer", None)):
            accounts[kind] = _run(
                conn, "INSERT INTO account (school_id, kind, pupil_id, balance_cents, "
                "created_at) VALUES (:s, :k, :p, 0, CURRENT_TIMESTAMP) RETURNING id",
                s=school, k=kind, p=pupil_id).scalar()
    return {"school": school, "pupil": pupil, "lunch": accounts["pupil_lunch"],
            "revenue": accounts["meal_revenue"], "cash": accounts["cash_drawer"]}


def _header(conn: Connection, ids: Params, client_id: str, reverses: int | None = None) -> int:
    return int(_run(
        conn, "INSERT INTO ledger_transaction (school_id, kind, client_id, created_at, "
        "occurred_at, memo, reverses_id) VALUES (:s, :k, :c, CURRENT_TIMESTAMP, "
        "CURRENT_TIMESTAMP, '', :r) RETURNING id",
        s=ids["school"], k="reversal" if reverses else "topup", c=client_id, r=reverses,
    ).scalar())


def _leg(conn: Connection, txn: int, account: int, cents: int) -> None:
    _run(conn, "INSERT INTO posting (transaction_id, account_id, amount_cents) "
         "VALUES (:t, :a, :c)", t=txn, a=account, c=cents)


def _write(engine: Engine, ids: Params, client_id: str,
           legs: list[tuple[str, int]], reverses: int | None = None) -> int:
    """One raw transaction: a header and its legs, committed together."""
    with engine.connect() as conn, conn.begin():
        txn = _header(conn, ids, client_id, reverses)
        for account, cents in legs:
            _leg(conn, txn, ids[account], cents)
    return txn


def _count(engine: Engine, table: str) -> int:
    return int(_scalar(engine, f"SELECT COUNT(*) FROM {table}"))  # noqa: S608 - fixed names


def test_a_balanced_transaction_is_accepted(any_engine: Engine, ids: Params) -> None:
    _write(any_engine, ids, "ok", [("lunch", 1000), ("cash", -1000)])
    _write(any_engine, ids, "three-legs", [("lunch", 500), ("cash", -200), ("revenue", -300)])
    assert _count(any_engine, "posting") == 5


def test_an_unbalanced_transaction_is_refused_at_commit(any_engine: Engine, ids: Params) -> None:
    with pytest.raises(IntegrityError):
        _write(any_engine, ids, "bad", [("lunch", 1000), ("cash", -999)])
    assert _count(any_engine, "ledger_transaction") == 0
    assert _count(any_engine, "posting") == 0


def test_a_single_leg_is_refused(any_engine: Engine, ids: Params) -> None:
    with pytest.raises(IntegrityError):
        _write(any_engine, ids, "one-leg", [("lunch", 1000)])
    assert _count(any_engine, "posting") == 0


def test_a_transaction_without_postings_is_refused(any_engine: Engine, ids: Params) -> None:
    with pytest.raises(IntegrityError):
        _write(any_engine, ids, "empty", [])
    assert _count(any_engine, "ledger_transaction") == 0


def test_a_zero_posting_is_refused(any_engine: Engine, ids: Params) -> None:
    with pytest.raises(IntegrityError):
        _write(any_engine, ids, "zero", [("lunch", 0), ("lunch", 100), ("cash", -100)])


def test_legs_added_later_must_still_sum_to_zero(any_engine: Engine, ids: Params) -> None:
    txn = _write(any_engine, ids, "ok", [("lunch", 1000), ("cash", -1000)])
    with pytest.raises(IntegrityError), any_engine.connect() as conn, conn.begin():
        _leg(conn, txn, ids["lunch"], 5000)
    assert _scalar(any_engine, "SELECT SUM(amount_cents) FROM posting") == 0


@pytest.mark.parametrize("sql", [
    "UPDATE posting SET amount_cents = amount_cents * 2",
    "UPDATE posting SET account_id = account_id",
    "DELETE FROM posting",
    "UPDATE ledger_transaction SET memo = 'edited'",
    "DELETE FROM ledger_transaction",
])
def test_history_is_never_edited(any_engine: Engine, ids: Params, sql: str) -> None:
    _write(any_engine, ids, "ok", [("lunch", 1000), ("cash", -1000)])
    with pytest.raises(IntegrityError, match="never"), any_engine.begin() as conn:
        _run(conn, sql)
    assert _scalar(any_engine, "SELECT SUM(ABS(amount_cents)) FROM posting") == 2000


def test_a_transaction_is_reversed_once_only(any_engine: Engine, ids: Params) -> None:
    txn = _write(any_engine, ids, "topup", [("lunch", 1000), ("cash", -1000)])
    _write(any_engine, ids, "undo-1", [("lunch", -1000), ("cash", 1000)], reverses=txn)
    with pytest.raises(IntegrityError):
        _write(any_engine, ids, "undo-2", [("lunch", -1000), ("cash", 1000)], reverses=txn)
    assert _count(any_engine, "ledger_transaction") == 2


def test_a_client_id_is_used_once(any_engine: Engine, ids: Params) -> None:
    _write(any_engine, ids, "tap-1", [("lunch", -350), ("revenue", 350)])
    with pytest.raises(IntegrityError):
        _write(any_engine, ids, "tap-1", [("lunch", -350), ("revenue", 350)])


def test_sqlite_guard_rows_cannot_be_forged(engine: Engine) -> None:
    """On SQLite, the zero-sum guard cannot be lifted by hand while a sum is not zero."""
    ids = _seed(engine)
    with engine.connect() as conn, conn.begin():
        txn = _header(conn, ids, "bad")
        _leg(conn, txn, ids["lunch"], 1000)
        with pytest.raises(IntegrityError, match="does not sum to zero"):
            _run(conn, "DELETE FROM ledger_unbalanced")
        with pytest.raises(IntegrityError, match="stay empty"):
            _run(conn, "INSERT INTO ledger_no_such_transaction (id) VALUES (:t)", t=txn)
        with pytest.raises(IntegrityError, match="never updated"):
            _run(conn, "UPDATE ledger_unbalanced SET transaction_id = -1")
        conn.rollback()
    assert _count(engine, "ledger_transaction") == 0


def _card(conn: Connection, ids: Params, uid: str, status: str = "active") -> int:
    return int(_run(
        conn, "INSERT INTO card (pupil_id, kind, uid, status, created_at, status_changed_at) "
        "VALUES (:p, 'uid', :u, :st, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id",
        p=ids["pupil"], u=uid, st=status).scalar())


@pytest.mark.parametrize(("setup", "sql"), [
    ("active", "INSERT INTO card (pupil_id, kind, uid, status, created_at, status_changed_at) "
               "SELECT pupil_id, 'uid', '04AABBCC', 'active', created_at, created_at FROM card"),
    ("active", "INSERT INTO card (pupil_id, kind, uid, status, created_at, status_changed_at) "
               "SELECT pupil_id, 'uid', uid, 'retired', created_at, created_at FROM card"),
    ("active", "UPDATE card SET uid = '04AABBCC'"),
    ("active", "UPDATE card SET pupil_id = pupil_id + 1"),
    ("active", "DELETE FROM card"),
    ("lost", "UPDATE card SET status = 'active'"),
    ("retired", "UPDATE card SET status = 'blocked'"),
])
def test_card_rules(any_engine: Engine, ids: Params, setup: str, sql: str) -> None:
    with any_engine.begin() as conn:
        _card(conn, ids, "04112233", setup)
    with pytest.raises(IntegrityError), any_engine.begin() as conn:
        _run(conn, sql)
    assert _scalar(any_engine, "SELECT status FROM card") == setup


def test_card_changes_that_are_allowed(any_engine: Engine, ids: Params) -> None:
    with any_engine.begin() as conn:
        _card(conn, ids, "04112233", "lost")
        _run(conn, "UPDATE card SET status = 'retired'")
        _card(conn, ids, "04445566")  # a new active card once the old one is gone
        _run(conn, "UPDATE card SET status = 'blocked' WHERE uid = '04445566'")
        _run(conn, "UPDATE card SET status = 'active' WHERE uid = '04445566'")
    assert _count(any_engine, "card") == 2


def test_migration_0002_downgrades_and_upgrades_again(any_engine: Engine) -> None:
    config = alembic_config(any_engine)
    with any_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    assert "posting" not in inspect(any_engine).get_table_names()
    upgrade(any_engine)
    ids = _seed(any_engine)
    with pytest.raises(IntegrityError):  # the rules came back with the tables
        _write(any_engine, ids, "bad", [("lunch", 1000)])
