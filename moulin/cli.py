"""The `moulin` command: one entry point for operators, developers and the demo."""

from __future__ import annotations

import logging

import typer
from pydantic import ValidationError

from moulin.commands import (
    camera_node,
    card,
    db,
    devices,
    gdpr,
    imports,
    mock,
    people,
    reader,
    serve,
)
from school import logs
from school.settings import Settings

app = typer.Typer(
    help="Moulin: a school's cashless canteen and classroom webcams.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(db.app, name="db")
app.add_typer(people.school_app, name="school")
app.add_typer(people.user_app, name="user")
app.add_typer(gdpr.people_app, name="people")
app.add_typer(gdpr.gdpr_app, name="gdpr")
app.add_typer(devices.app, name="device")
app.add_typer(imports.app, name="import")
app.add_typer(reader.app, name="reader")
app.add_typer(mock.app, name="mock")
app.add_typer(card.app, name="card")
app.command("serve")(serve.serve)
app.command("demo")(serve.demo)
app.command("camera-node")(camera_node.camera_node)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log more.")) -> None:
    logs.configure(log_format(), level=logging.DEBUG if verbose else logging.INFO)


def log_format() -> logs.LogFormat:
    """The configured log format; text when the configuration is broken (the command
    then says what is wrong)."""
    try:
        return Settings().log_format
    except (ValidationError, ValueError):
        return "text"


if __name__ == "__main__":
    app()
