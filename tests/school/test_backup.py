"""Backups restore into an empty database whole, and `moulin db check` passes on them."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from cardpay.accounts import pupil_account, school_account
from cardpay.ledger import post
from cardpay.models import AccountKind, Posting, TransactionKind
from moulin.cli import app
from school.backup import BackupError, backup, restore
from school.db import make_engine
from school.migrate import upgrade
from school.models import Pupil
from tests import factories
from tests.pg import Cluster


def _fill(engine: Engine) -> None:
    upgrade(engine)
    with Session(engine) as session:
        s = factories.small_school(session)
        cash = school_account(session=session, school_id=s.school.id or 0,
                              kind=AccountKind.CASH_DRAWER)
        for n, pupil in enumerate(s.pupils):
            post(session=session, school_id=s.school.id or 0, kind=TransactionKind.TOPUP,
                 client_id=f"t{n}", legs=[(pupil_account(session=session, pupil=pupil), 500),
                                          (cash, -500)])


def _counts(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        return (int(session.exec(select(func.count()).select_from(Pupil)).one()),
                int(session.exec(select(func.count()).select_from(Posting)).one()))


def _check(url: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    monkeypatch.setenv("MOULIN_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["db", *args], prog_name="moulin")
    assert result.exit_code == 0, result.output
    return result.output


def test_sqlite_backup_and_restore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_engine(f"sqlite:///{tmp_path / 'live.db'}")
    _fill(source)
    backup(source, tmp_path / "b" / "moulin.backup")
    assert (tmp_path / "b" / "moulin.backup").stat().st_mode & 0o777 == 0o600
    url = f"sqlite:///{tmp_path / 'restored.db'}"
    output = _check(url, monkeypatch, "restore", str(tmp_path / "b" / "moulin.backup"))
    assert "Database OK." in output
    assert _counts(make_engine(url)) == _counts(source) == (3, 6)


def test_restore_refuses_a_database_that_is_not_empty(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'live.db'}")
    _fill(engine)
    backup(engine, tmp_path / "x.backup")
    with pytest.raises(BackupError, match="not empty"):
        restore(engine, tmp_path / "x.backup")


def test_restore_refuses_garbage(tmp_path: Path) -> None:
    (tmp_path / "junk.backup").write_bytes(b"not a backup" * 100)
    with pytest.raises(BackupError, match="not a SQLite backup"):
        restore(make_engine(f"sqlite:///{tmp_path / 'new.db'}"), tmp_path / "junk.backup")


@pytest.mark.postgres
def test_postgresql_backup_and_restore(pg_url: str, pg_cluster: Cluster, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_engine(pg_url)
    _fill(source)
    _check(pg_url, monkeypatch, "backup", str(tmp_path / "pg.backup"))
    name = f"r_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_cluster.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        output = _check(pg_cluster.url(name), monkeypatch, "restore", str(tmp_path / "pg.backup"))
        assert "Database OK." in output
        restored = make_engine(pg_cluster.url(name))
        assert _counts(restored) == _counts(source) == (3, 6)
        restored.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
        source.dispose()


@pytest.mark.postgres
def test_moulin_db_restore_takes_an_operators_pg_dump(
    pg_url: str, pg_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A town's nightly `pg_dump --format=custom` (README, 'A town on PostgreSQL') made
    with PostgreSQL's own tool, not `moulin db backup`: `moulin db restore` loads it, db
    check passes, and the database still enforces the ledger's rules (a system account
    keeps no balance on its row; postings sum to zero)."""
    source = make_engine(pg_url)
    _fill(source)
    dump = tmp_path / "nightly.dump"
    subprocess.run([str(pg_cluster.bindir / "pg_dump"), "--format=custom", "--no-owner",
                    "--file", str(dump), "--dbname",
                    source.url.set(drivername="postgresql").render_as_string(False)],
                   check=True, capture_output=True)
    name = f"r_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_cluster.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    restored = make_engine(pg_cluster.url(name))
    try:
        output = _check(pg_cluster.url(name), monkeypatch, "restore", str(dump))
        assert "Database OK." in output
        assert _counts(restored) == _counts(source) == (3, 6)
        with restored.connect() as conn:
            cash = conn.execute(text("SELECT id FROM account WHERE kind = 'cash_drawer'")
                                ).scalar_one()
            with pytest.raises(IntegrityError):
                conn.execute(text("UPDATE account SET balance_cents = 5 WHERE id = :id"),
                             {"id": cash})
            conn.rollback()
            with pytest.raises(IntegrityError):  # one leg: refused at commit
                _post_one_leg(conn, cash)
    finally:
        restored.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
        source.dispose()


def _post_one_leg(conn: Connection, account_id: int) -> None:
    conn.execute(text(
        "INSERT INTO ledger_transaction (school_id, kind, client_id, created_at, "
        "occurred_at, memo) SELECT school_id, 'correction', 'odd', now(), now(), '' "
        "FROM account WHERE id = :id"), {"id": account_id})
    conn.execute(text(
        "INSERT INTO posting (transaction_id, account_id, amount_cents) "
        "SELECT id, :id, 100 FROM ledger_transaction WHERE client_id = 'odd'"),
        {"id": account_id})
    conn.commit()
