"""`moulin people purge` and `moulin gdpr register`: personal data after its retention
period, and the register of processing (GDPR art. 30)."""

from __future__ import annotations

from typing import Literal

import typer
from rich.table import Table
from sqlmodel import Session

from moulin import context
from moulin.purge import purge
from parent_portal import register
from school.clock import utcnow

people_app = typer.Typer(help="People's personal data.", no_args_is_help=True)
gdpr_app = typer.Typer(help="GDPR: the register of processing.", no_args_is_help=True)


@gdpr_app.command("register")
def register_cmd(
    lang: Literal["fr", "en"] | None = typer.Option(
        None, "--lang", help="fr or en (default: MOULIN_DEFAULT_LOCALE)."),
) -> None:
    """Print the register of processing activities (GDPR art. 30) as Markdown, drawn up
    from this deployment's settings and database."""
    settings = context.load_settings()
    with context.database(settings) as eng, Session(eng) as session:
        built = register.build(session, settings, lang=lang or settings.default_locale,
                               now=utcnow())
    typer.echo(register.markdown(built), nl=False)


@people_app.command("purge")
def purge_cmd(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be erased; "
                                 "change nothing."),
) -> None:
    """Anonymise pupils and former guardians past the retention period and delete old
    viewing logs, e-mails and sessions (MOULIN_PERSONAL_DATA_RETENTION_DAYS,
    MOULIN_CAMERA_VIEW_RETENTION_DAYS). Run it daily; a second run does nothing more."""
    settings = context.load_settings()
    with context.database(settings) as eng:
        report = purge(eng, settings, now=utcnow(), dry_run=dry_run)
    table = Table("erased", "count", title="Would be erased (dry run)" if dry_run else None)
    for name, count in report.counts().items():
        table.add_row(name.replace("_", " "), str(count))
    context.console.print(table)
    if dry_run:
        context.console.print("Dry run: nothing was changed.")
    else:
        context.console.print(
            f"Retention: {settings.personal_data_retention_days} days after leaving; "
            f"viewing log {settings.camera_view_retention_days} days. "
            f"{report.total} record(s) erased.", highlight=False)
