"""`moulin db …`: migrations and integrity checks."""

from __future__ import annotations

import typer
from sqlmodel import Session

from cardpay.integrity import check_integrity
from moulin import context
from moulin import models as _models  # noqa: F401 - every table, for autogenerate
from school import integrity
from school.migrate import current_revision, head_revision, make_revision, upgrade

app = typer.Typer(help="The database: migrations and integrity checks.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_cmd() -> None:
    """Create or migrate the database schema to the newest version."""
    eng = context.engine()
    before = current_revision(eng)
    upgrade(eng)
    after = current_revision(eng)
    if before == after:
        context.console.print(f"Database already at {after}.")
    else:
        context.console.print(f"Database migrated from {before or 'empty'} to {after}.")


@app.command("check")
def check_cmd() -> None:
    """Check the database's integrity; exit 1 and name every problem found."""
    eng = context.engine()
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

    make_revision(context.engine(), message)
