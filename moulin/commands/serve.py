"""`moulin serve` and `moulin demo`: run the web server (the demo with its mock cameras)."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
import uvicorn
from sqlmodel import Session

from moulin import context, demo_data, demo_reader, demo_tills
from school.db import make_engine
from school.metrics import MULTIPROC_ENV
from school.migrate import current_revision, head_revision, upgrade
from school.people import get_school

GRACE_SECONDS = 3


def serve(
    host: str | None = typer.Option(None, help="Address to listen on (default from settings)."),
    port: int | None = typer.Option(None, help="Port to listen on (default from settings)."),
    workers: int = typer.Option(1, min=1, help="Worker processes (PostgreSQL only for >1)."),
) -> None:
    """Run the web server (parents' and staff pages, till and camera APIs)."""
    settings = context.load_settings()
    with context.database(settings) as eng:
        current, head = current_revision(eng), head_revision(eng)
    if current != head:
        context.fail(
            f"database schema is at {current or 'empty'}, not {head}: run `moulin db upgrade` first"
        )
    if workers > 1 and settings.effective_database_url.startswith("sqlite"):
        context.fail("several workers need PostgreSQL (MOULIN_DATABASE_URL)")
    if workers > 1:
        # Each worker would open every camera and see only its own viewers.
        os.environ["MOULIN_CAPTURE_CAMERAS"] = "false"
        context.console.print("Several workers: cameras are served by camera nodes only "
                              "(moulin camera-node).", highlight=False)
        shared_metrics(settings.data_dir / "metrics")
    uvicorn.run(
        "moulin.asgi:app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level="info",
        log_config=None,  # uvicorn's lines go through our handler (school.logs)
        access_log=settings.access_log,
        # Camera streams never end by themselves: cut them this long after Ctrl+C.
        timeout_graceful_shutdown=GRACE_SECONDS,
    )


def shared_metrics(folder: Path) -> None:
    """Let the workers add up their counters in `folder` (school.metrics), emptied first:
    the files of a previous run would count again."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(folder.resolve())


def demo(
    port: int = typer.Option(8000, help="Port to serve the demo on."),
    host: str = typer.Option("127.0.0.1", help="Address to serve the demo on."),
    data_dir: Path = typer.Option(Path("var/demo"), help="Where the demo school is created."),
    serve_it: bool = typer.Option(True, "--serve/--no-serve", help="Start the server."),
) -> None:
    """Create a fresh demo school in ./var/demo/ and serve it."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    db_url = f"sqlite:///{(data_dir / 'moulin.db').resolve()}"
    os.environ.update(
        MOULIN_DATA_DIR=str(data_dir), MOULIN_DATABASE_URL=db_url, MOULIN_ENVIRONMENT="development"
    )
    from moulin import demo_cameras  # the mocks are for the demo only, not for `serve`

    eng = make_engine(db_url)
    upgrade(eng)
    mocks = demo_cameras.start_mocks(len(demo_data.CLASSES))
    try:
        with Session(eng) as session:
            now = datetime.now(ZoneInfo("Europe/Paris"))
            logins = demo_data.seed(
                session, today=now.date(),
                master_key=context.load_settings().effective_card_master_key())
            session.commit()
            school = get_school(session, "demo")
            demo_cameras.seed_cameras(
                session, school=school, urls=[m.url for m in mocks],
                secret_key=context.load_settings().effective_secret_key(), now=now,
            )
            session.commit()
            tills = demo_tills.seed_tills(session, school)
        eng.dispose()
        _print_welcome(host, port, logins)
        if serve_it:
            demo_reader.serve(tills, host=host, port=port, data_dir=data_dir)
    finally:
        for mock in mocks:
            mock.close()


def _print_welcome(host: str, port: int, logins: list[demo_data.DemoLogin]) -> None:
    from rich.table import Table

    table = Table(title=f"Demo logins (password for all: {demo_data.DEMO_PASSWORD})")
    table.add_column("e-mail")
    table.add_column("role")
    table.add_column("who")
    for login in logins:
        table.add_row(login.email, login.role, login.what)
    context.console.print(table)
    context.console.print(
        "Each class has a mock camera; for the demo they broadcast every day from 7:00 to "
        "20:00 (a real school sets its class hours). Parents: 'Caméras des classes'.",
        highlight=False,
    )
    context.console.print(
        f"\n[bold green]Moulin demo:[/] open http://{host}:{port}/ in a browser "
        "(Ctrl+C to stop).\n",
        highlight=False,
    )
