"""Backups of the whole database, and restoring one into an empty database.

SQLite: the online backup API, consistent while the server keeps running. PostgreSQL:
`pg_dump` in its custom format, restored with `pg_restore`. Keys kept beside the database
in the data folder (the card master key, the secret key) are not in the database: back
them up with it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from school.errors import InvalidInput


class BackupError(InvalidInput):
    """A backup or restore that could not be done; nothing was changed."""


def _libpq_url(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (Debian package postgresql-client)")
    return path


def backup(engine: Engine, target: Path) -> None:
    """Write a consistent copy of the database to `target`, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if engine.dialect.name == "sqlite":
            _sqlite_backup(engine, tmp)
        else:
            _run(
                [
                    _tool("pg_dump"),
                    "--format=custom",
                    "--no-owner",
                    "--file",
                    str(tmp),
                    "--dbname",
                    _libpq_url(engine),
                ]
            )
        os.chmod(tmp, 0o600)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def _sqlite_backup(engine: Engine, tmp: Path) -> None:
    raw = engine.raw_connection()
    try:
        source = raw.driver_connection
        assert isinstance(source, sqlite3.Connection)
        with sqlite3.connect(tmp) as copy:
            source.backup(copy)
        copy.close()
    finally:
        raw.close()


def restore(engine: Engine, source: Path) -> None:
    """Load a backup into the database `engine` points at, which must be empty."""
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    if inspect(engine).get_table_names():
        raise BackupError("the target database is not empty; restore into a new one")
    if engine.dialect.name == "sqlite":
        _sqlite_restore(engine, source)
    else:
        _run(
            [
                _tool("pg_restore"),
                "--no-owner",
                "--exit-on-error",
                "--single-transaction",
                "--dbname",
                _libpq_url(engine),
                str(source),
            ]
        )


def _sqlite_restore(engine: Engine, source: Path) -> None:
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as check:
            verdict = check.execute("PRAGMA integrity_check").fetchone()[0]
        check.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source} is not a SQLite backup: {exc}") from exc
    if verdict != "ok":
        raise BackupError(f"{source} is damaged: {verdict}")
    raw = engine.raw_connection()
    try:
        target = raw.driver_connection
        assert isinstance(target, sqlite3.Connection)
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as backup_db:
            backup_db.backup(target)
        backup_db.close()
    finally:
        raw.close()
    engine.dispose()


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-500:]}")
