"""`moulin db …`: migrations and integrity checks."""

from __future__ import annotations

from pathlib import Path

import typer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from cardpay.integrity import check_integrity
from moulin import context
from moulin import models as _models  # noqa: F401 - every table, for autogenerate
from school import integrity
from school.backup import BackupError, backup, restore
from school.migrate import current_revision, head_revision, make_revision, upgrade

app = typer.Typer(help="The database: migrations and integrity checks.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_cmd() -> None:
    """Create or migrate the database schema to the newest version."""
    settings = context.load_settings()
    with context.database(settings) as eng:
        before = current_revision(eng)
        upgrade(eng, secret_key=settings.effective_secret_key())
        after = current_revision(eng)
    if before == after:
        context.console.print(f"Database already at {after}.")
    else:
        context.console.print(f"Database migrated from {before or 'empty'} to {after}.")


@app.command("check")
def check_cmd() -> None:
    """Check the database's integrity; exit 1 and name every problem found."""
    with context.database() as eng:
        _check(eng)


def _check(eng: Engine) -> None:
    current, head = current_revision(eng), head_revision(eng)
    if current != head:
        context.fail(f"schema is at {current or 'empty'}, not {head}: run `moulin db upgrade`")
    with Session(eng) as session:
        problems = [*integrity.check(session), *check_integrity(session)]
    if problems:
        for problem in problems:
            context.errors.print(f"- {problem}", highlight=False)
        context.fail(f"{len(problems)} problem(s) found")
    context.console.print("Database OK.")


@app.command("revision", hidden=True)
def revision_cmd(message: str = typer.Option(..., "-m", help="What the migration does.")) -> None:
    """(Developers) autogenerate a migration from the models; review it before committing."""
    with context.database() as eng:
        make_revision(eng, message)


@app.command("backup")
def backup_cmd(file: Path = typer.Argument(..., help="Where to write the backup.")) -> None:
    """Write a consistent backup of the database (safe while the server runs)."""
    with context.database() as eng:
        try:
            backup(eng, file)
        except BackupError as exc:
            context.fail(str(exc))
    context.console.print(
        f"Backup written to {file}. Keep the data folder's key files "
        "with it: they are not in the database.",
        highlight=False,
    )


@app.command("restore")
def restore_cmd(
    file: Path = typer.Argument(..., help="A backup made by `moulin db backup`."),
) -> None:
    """Restore a backup into an empty database, then check it as `moulin db check` does."""
    with context.database() as eng:
        try:
            restore(eng, file)
        except BackupError as exc:
            context.fail(str(exc))
        context.console.print(f"Restored {file}.", highlight=False)
        _check(eng)
