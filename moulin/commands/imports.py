"""`moulin import pupils FILE.csv`: load the school's pupil register."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
from rich.progress import Progress
from sqlmodel import Session

from moulin import context
from school.errors import ImportRejected
from school.pupil_import import import_pupils

app = typer.Typer(help="Import records from files.", no_args_is_help=True)


@app.command("pupils")
def pupils(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="CSV export of the pupil register."
    ),
    school_slug: str | None = typer.Option(
        None, "--school", help="School slug (default: the first)."
    ),
) -> None:
    """Import pupils, classes and guardians' e-mails. Checks every row first and writes
    nothing if any row is wrong; re-importing the same file changes nothing."""
    raw = file.read_bytes()
    with context.database() as eng, Session(eng) as session:
        where = context.school(session, school_slug)
        today = datetime.now(ZoneInfo(where.timezone)).date()
        with Progress(console=context.console, transient=True) as bar:
            task = bar.add_task("Importing pupils", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            try:
                result = import_pupils(
                    session=session,
                    school=where,
                    raw=raw,
                    today=today,
                    source=str(file),
                    progress=progress,
                )
            except ImportRejected as exc:
                session.rollback()
                for problem in exc.problems:
                    context.errors.print(f"- {problem}", highlight=False)
                context.fail(f"{file.name}: {exc}")
        session.commit()
    context.console.print(
        f"{result.rows} rows: {result.pupils_created} pupils added, {result.pupils_updated} "
        f"updated, {result.pupils_unchanged} unchanged; {result.classes_created} classes and "
        f"{result.guardians_created} guardians added, {result.links_created} links made.",
        highlight=False,
    )
