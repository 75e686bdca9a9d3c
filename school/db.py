"""Database engines and sessions, for SQLite on one box and PostgreSQL for a town."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Executable, event
from sqlalchemy.engine import Engine, make_url
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

    def first(self, statement: Executable,
              params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        with self._lock:
            if self._conn is None:
                self._conn = self._engine.connect()
            try:
                row = self._conn.execute(statement, params).first()
                return None if row is None else tuple(row)
            except Exception:
                self._drop()
                raise
            finally:
                if self._conn is not None:
                    self._conn.rollback()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.invalidate()  # whatever failed, the next read starts afresh
            conn.close()
