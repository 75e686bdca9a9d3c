"""The `moulin` command: one entry point for operators, developers and the demo.

Each command's module is imported only when that command runs (or when `moulin --help`
lists them all): `moulin reader` on a till box then loads the reader daemon, not the web
server, the database layer or OpenCV.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from school import logs
from school.settings import Settings

# name: (module, attribute, kind). A "group" attribute is a typer.Typer of subcommands,
# a "command" one a function. Listed in the order `moulin --help` shows them.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": ("moulin.commands.serve", "serve", "command"),
    "demo": ("moulin.commands.serve", "demo", "command"),
    "camera-node": ("moulin.commands.camera_node", "camera_node", "command"),
    "db": ("moulin.commands.db", "app", "group"),
    "school": ("moulin.commands.people", "school_app", "group"),
    "user": ("moulin.commands.people", "user_app", "group"),
    "people": ("moulin.commands.gdpr", "people_app", "group"),
    "gdpr": ("moulin.commands.gdpr", "gdpr_app", "group"),
    "device": ("moulin.commands.devices", "app", "group"),
    "import": ("moulin.commands.imports", "app", "group"),
    "reader": ("moulin.commands.reader", "app", "group"),
    "mock": ("moulin.commands.mock", "app", "group"),
    "card": ("moulin.commands.card", "app", "group"),
}


def load_command(name: str) -> Any:
    """The click command for `moulin NAME`, its module imported now (typed Any: typer
    keeps click's classes in a private, vendored module)."""
    module, attribute, kind = COMMANDS[name]
    target: Any = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer(add_completion=False)
    holder.callback()(_nothing)  # a callback makes typer build a group around `name`
    if kind == "group":
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)
    return group.commands[name]


def _nothing() -> None:
    pass


class LazyCommands(TyperGroup):
    """`moulin`'s subcommands, each loaded on first use (click's documented lazy-group
    pattern: `list_commands` names them, `get_command` builds one)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS:
            return load_command(cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    cls=LazyCommands,
    help="Moulin: a school's cashless canteen and classroom webcams.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


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
