"""`moulin device add`: register a till or camera node and print its token once."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from sqlmodel import Session

from moulin import context
from school.devices import add_device
from school.models import DeviceKind

app = typer.Typer(help="Devices: tills and camera nodes.", no_args_is_help=True)


@app.command("add")
def device_add(
    name: str = typer.Argument(..., help="A name staff will recognise, e.g. 'till-1'."),
    kind: DeviceKind = typer.Option(DeviceKind.TILL, "--kind", help="What the device is."),
    school_slug: str | None = typer.Option(
        None, "--school", help="School slug (default: the first)."
    ),
    token_file: Path | None = typer.Option(
        None,
        "--token-file",
        help="Write the token to this file (mode 0600) instead of printing it.",
    ),
) -> None:
    """Add a device. Its token is shown once: only its SHA-256 is kept."""
    with context.database() as eng, Session(eng) as session:
        where = context.school(session, school_slug)
        _device, token = add_device(session=session, school=where, kind=kind, name=name)
        session.commit()
    if token_file is not None:
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        context.console.print(
            f"Device {name!r} ({kind.value}) added; token written to {token_file}."
        )
        return
    context.console.print(f"Device {name!r} ({kind.value}) added. Its token, shown only once:")
    print(token)
