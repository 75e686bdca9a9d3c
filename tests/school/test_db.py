"""Engines and the connection the till API keeps for its reads on the event loop."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.exc import IntegrityError, OperationalError

from school.clock import UTCDateTime, utc_from_db
from school.db import (
    DriverStatement,
    HeldConnection,
    SavepointLostError,
    driver_savepoint,
    make_engine,
)
from school.models import DeviceKind

READ = DriverStatement(text("SELECT x FROM t WHERE x = :x").bindparams(bindparam("x")))


def test_a_held_connection_reads_without_holding_back_a_checkpoint(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'held.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x)"))
        conn.execute(text("INSERT INTO t VALUES (1), (2)"))
    held = HeldConnection(engine)
    try:
        assert held.first(READ, {"x": 2}) == (2,)
        assert held.first(READ, {"x": 3}) is None
        with engine.begin() as conn:  # written after the reads: they must see it
            conn.execute(text("INSERT INTO t VALUES (3)"))
        assert held.first(READ, {"x": 3}) == (3,)
        # No snapshot left open: a checkpoint copies the whole log and empties it.
        with engine.connect() as conn:
            busy, _log, _done = conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).one()
        assert busy == 0
        assert (tmp_path / "held.db-wal").stat().st_size == 0
    finally:
        held.close()
        engine.dispose()


def test_a_held_connection_recovers_from_a_failed_read(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'held.db'}")
    held = HeldConnection(engine)
    try:
        with pytest.raises(OperationalError):  # no such table yet
            held.first(READ, {"x": 1})
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert held.first(READ, {"x": 1}) == (1,)
    finally:
        held.close()
        engine.dispose()


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_driver_statement_writes_what_core_writes(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Datetimes, enums, booleans and literal values in the statement go through the
    same processors as `Connection.execute`: the rows read back through Core are equal,
    and a duplicate is SQLAlchemy's IntegrityError, as the till's callers expect. (The
    processors are found through SQLAlchemy's compiled statement: an upgrade that changes
    how fails here.)"""
    url = f"sqlite:///{tmp_path / 'driver.db'}" if db == "sqlite" \
        else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    metadata = MetaData()
    table = Table(
        "t", metadata, Column("id", Integer, primary_key=True),
        Column("at", UTCDateTime()), Column("kind", SAEnum(DeviceKind, native_enum=False)),
        Column("flag", Boolean), Column("name", String, unique=True),
    )
    metadata.create_all(engine)
    at = datetime(2026, 12, 1, 11, 30, 15, 123456, tzinfo=ZoneInfo("Europe/Paris"))
    row = {"at": at, "kind": DeviceKind.TILL, "flag": True, "name": "a"}
    fast = DriverStatement(insert(table).returning(table.c.id), keys=list(row))
    tagged = DriverStatement(
        select(table.c.id, table.c.at).where(table.c.kind == DeviceKind.TILL,
                                             table.c.name == bindparam("name")))
    try:
        with engine.begin() as conn:
            inserted = fast.first(conn, row)
            conn.execute(insert(table), {**row, "name": "b"})
            assert inserted is not None
            found = tagged.first(conn, {"name": "a"})
            assert found is not None
            assert found[0] == inserted[0]
            assert utc_from_db(found[1]) == at
            with pytest.raises(IntegrityError), conn.begin_nested():  # PostgreSQL goes on
                fast.first(conn, row)
            with pytest.raises(KeyError):  # an INSERT's columns are all required
                fast.first(conn, {"at": at})
        with engine.connect() as conn:
            rows = conn.execute(select(table.c.at, table.c.kind, table.c.flag)
                                .order_by(table.c.id)).all()
        assert rows[0] == rows[1] == (at, DeviceKind.TILL, True)
    finally:
        engine.dispose()


def test_a_driver_savepoint_undoes_its_block_alone(tmp_path: Path) -> None:
    """The group committer's savepoint: a block that raises leaves the transaction with
    what came before it, an ORM session's own savepoint nests inside, and a block whose
    savepoint cannot be rolled back to says the whole transaction is lost."""
    from sqlmodel import Session

    engine = make_engine(f"sqlite:///{tmp_path / 'savepoint.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x)"))
    try:
        with engine.connect() as conn, conn.begin():
            with driver_savepoint(conn):
                conn.execute(text("INSERT INTO t VALUES (1)"))
            with pytest.raises(ZeroDivisionError):
                _in_savepoint(conn, "INSERT INTO t VALUES (2)", then="SELECT 1 / 0")
            with driver_savepoint(conn):
                session = Session(bind=conn, join_transaction_mode="create_savepoint")
                session.execute(text("INSERT INTO t VALUES (3)"))
                session.commit()
                session.close()
            with pytest.raises(SavepointLostError):  # the block ended its savepoint itself
                _in_savepoint(conn, "RELEASE work", then="SELECT 1 / 0")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT x FROM t ORDER BY x")).scalars().all() == [1, 3]
    finally:
        engine.dispose()


def _in_savepoint(conn: Connection, statement: str, *, then: str) -> None:
    with driver_savepoint(conn):
        conn.exec_driver_sql(statement)
        if conn.exec_driver_sql(then).scalar() is None:  # SQLite's 1 / 0 is NULL
            raise ZeroDivisionError(then)
