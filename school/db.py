"""Database engines and sessions, for SQLite on one box and PostgreSQL for a town."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Executable, event
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel import Session, create_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide when a transaction begins (BEGIN IMMEDIATE
    # where a write follows a read); see make_engine.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # An acknowledged payment must survive a power cut.
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    begin = conn.get_execution_options().get("moulin_sqlite_begin", "BEGIN")
    conn.exec_driver_sql(begin)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            # Parameters hold card UIDs, token digests, names: never in a log line or an
            # error's message, even with SQL logging on.
            hide_parameters=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20,
                         hide_parameters=True)


@contextmanager
def immediate_session(engine: Engine, *, expire_on_commit: bool = True) -> Iterator[Session]:
    """Open a session whose first statement is `BEGIN IMMEDIATE` on SQLite.

    Use it for every transaction that reads and then writes: under SQLite's default
    deferred BEGIN, a reader that tries to write after another writer committed fails at
    once with 'database is locked' (the busy timeout does not apply to that upgrade);
    BEGIN IMMEDIATE takes the write lock first and waits its turn instead.
    """
    if engine.dialect.name == "sqlite":
        # Same pool, another BEGIN; the connection is taken only when first used, so a
        # request holds one connection at a time and a busy server cannot starve the pool.
        engine = engine.execution_options(moulin_sqlite_begin="BEGIN IMMEDIATE")
    with Session(engine, expire_on_commit=expire_on_commit) as session:
        yield session


class DriverStatement:
    """A Core statement compiled once per dialect and run with the driver's own cursor.

    `Connection.execute` of a statement already in SQLAlchemy's cache still costs 25-60
    microseconds (an execution context, events, a result object) where the driver needs
    2-5; the till runs a handful of statements a tap on one writer thread, and every
    request shares one interpreter lock with it. Parameters go through the statement's
    own type processors, so the database gets what `Connection.execute` would send; rows
    come back as the driver gives them (SQLite: datetimes as text, booleans as 0 or 1;
    enums are their values everywhere; see `school.clock.utc_from_db`). The transaction
    is the one the connection has begun; on SQLite, whose driver is left in autocommit (see
    `_sqlite_pragmas`), a statement run before `Connection.begin` (or a first Core
    statement) commits alone. Only for statements with plain (not expanding)
    parameters. These statements are not in SQLAlchemy's statement log (`echo`)."""

    def __init__(self, statement: Executable, *, keys: Sequence[str] | None = None) -> None:
        self._statement, self._keys = statement, keys  # keys: an INSERT's columns
        self._compiled: dict[str, _Compiled] = {}

    def cursor(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """Run the statement on `conn`'s driver connection; its DB-API cursor."""
        compiled = self._for(conn.dialect)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, compiled.parameters(params))
        except conn.dialect.loaded_dbapi.Error as exc:
            cursor.close()
            # The exception `Connection.execute` raises: IntegrityError for a duplicate...
            raise DBAPIError.instance(compiled.sql, None, exc, conn.dialect.loaded_dbapi.Error,
                                      hide_parameters=True, dialect=conn.dialect) from exc
        return cursor

    def many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per row of parameters, with the driver's `executemany`
        (psycopg sends them all before reading an answer: one round trip)."""
        compiled = self._for(conn.dialect)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(compiled.sql, [compiled.parameters(row) for row in rows])
        except conn.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(compiled.sql, None, exc, conn.dialect.loaded_dbapi.Error,
                                      hide_parameters=True, dialect=conn.dialect) from exc
        finally:
            cursor.close()

    def first(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        cursor = self.cursor(conn, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else tuple(row)

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        cursor = self.cursor(conn, params)
        try:
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def rowcount(self, conn: Connection, params: Mapping[str, Any]) -> int:
        cursor = self.cursor(conn, params)
        try:
            return int(cursor.rowcount)  # before closing: some drivers forget it then
        finally:
            cursor.close()

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self._statement.compile(dialect=dialect,  # type: ignore[attr-defined]
                                               column_keys=self._keys)
            assert isinstance(compiled, SQLCompiler)
            found = _Compiled(compiled, dialect, required=self._keys or ())
            self._compiled[dialect.name] = found
        return found


_REQUIRED = object()


class _Compiled:
    """The SQL and, for each parameter the driver takes, its name, the value the statement
    itself holds for it (a literal in the statement, a column default) and its
    processor: built once, so that each call only looks values up.

    Read from the compiled statement's documented `SQLCompiler` attributes (`string`,
    `binds`, `positiontup`) and each parameter type's public `bind_processor`, the
    processing `Connection.execute` applies (type decorators, then the driver's);
    tests/school/test_db.py checks that both send the database the same values."""

    def __init__(self, compiled: SQLCompiler, dialect: Dialect, *,
                 required: Sequence[str]) -> None:
        self.sql = compiled.string
        binds = compiled.binds
        positions = compiled.positiontup
        self._positional = positions is not None
        self._plan = [
            (name, _REQUIRED if binds[name].required or name in required
             else binds[name].effective_value,
             binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in (positions if positions is not None else list(binds))
        ]

    def parameters(self, params: Mapping[str, Any]) -> Any:
        values = []
        for name, default, process in self._plan:
            # A required parameter missing is a KeyError, as SQLAlchemy refuses it too.
            value = params[name] if default is _REQUIRED else params.get(name, default)
            values.append(process(value) if process and value is not None else value)
        if self._positional:
            return values
        return {name: value for (name, _, _), value in zip(self._plan, values, strict=True)}


class SavepointLostError(RuntimeError):
    """A block's work could not be undone alone: roll back the whole transaction."""


@contextmanager
def driver_savepoint(conn: Connection, name: str = "work") -> Iterator[None]:
    """A SAVEPOINT inside `conn`'s transaction, issued on the driver: released when the
    block ends, rolled back to (and the exception raised again) when it raises.

    For the group committer, which wraps every tap of a batch in one: SQLAlchemy's own
    `Connection.begin_nested` costs about 200 microseconds a savepoint where the driver
    takes 6 (SQLite, 2026-12-08, loaded machine), more than a tap's own statements.
    SQLAlchemy does not know of this savepoint, so the block must leave its own nested
    transactions closed (an ORM session joined with `create_savepoint` does), and must
    not commit or roll back `conn` itself. The driver's calls are those of the DB-API's
    public `driver_connection`; tests/cardpay/test_group_commit.py runs them."""
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        cursor.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            try:
                cursor.execute(f"ROLLBACK TO {name}")
                cursor.execute(f"RELEASE {name}")
            except Exception as lost:
                raise SavepointLostError("rolling back to a savepoint failed: the whole "
                                         "transaction must be rolled back") from lost
            raise
        cursor.execute(f"RELEASE {name}")
    finally:
        cursor.close()


class HeldConnection:
    """One connection kept for small reads made where a worker thread would cost more
    than the read (the till API reads a device's token on the event loop, on SQLite): the
    pool's checkout and return cost about as much as the read itself. Each read ends its
    transaction at once, so the connection never holds a snapshot that would keep the
    WAL from being checkpointed."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._lock = threading.Lock()  # one read at a time, from whichever thread

    def first(self, statement: DriverStatement,
              params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row, as the driver gives it (see `DriverStatement`)."""
        with self._lock:
            if self._conn is None:
                self._conn = self._engine.connect()
            try:
                return statement.first(self._conn, params)
            except Exception:
                self._drop()
                raise
            finally:
                if self._conn is not None:  # no transaction left open, on any driver
                    self._conn.connection.driver_connection.rollback()  # type: ignore[union-attr]

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.invalidate()  # whatever failed, the next read starts afresh
            conn.close()
