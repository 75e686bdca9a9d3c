"""Engines and the connection the till API keeps for its reads on the event loop."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.exc import OperationalError

from school.db import DriverStatement, HeldConnection, make_engine

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
