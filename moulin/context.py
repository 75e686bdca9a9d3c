"""What every command needs: the settings, an engine, and a way to fail clearly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from school.settings import Settings

if TYPE_CHECKING:  # the database layer is imported by the commands that use it
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from school.models import School

console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[bold red]Error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        fail(f"bad configuration: {exc}")


@contextmanager
def database(settings: Settings | None = None) -> Iterator[Engine]:
    """An engine for one command, its connections closed when the command is done."""
    from school.db import make_engine

    eng = make_engine((settings or load_settings()).effective_database_url)
    try:
        yield eng
    finally:
        eng.dispose()


def school(session: Session, slug: str | None) -> School:
    from school.errors import NotFound
    from school.people import get_school

    try:
        return get_school(session, slug)
    except NotFound as exc:
        fail(str(exc))
