"""`moulin reader`: run the reader daemon beside a till, or show how it is doing."""

from __future__ import annotations

import gc
import logging
import signal
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import typer

from moulin import context
from school import logs

app = typer.Typer(
    help="The reader daemon beside each till: taps in, verdicts and beeps out.",
    invoke_without_command=True,
)
logger = logging.getLogger(__name__)


def default_journal() -> Path:
    return context.load_settings().data_dir / "reader" / "journal.db"


def read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        context.fail(f"cannot read the token file {path}: {exc.strerror}")
    if not token:
        context.fail(f"the token file {path} is empty: `moulin device add … --token-file` it")
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO) & ~stat.S_IRGRP:
        logger.warning("token file %s is readable by others: chmod 0600 it", path)
    return token


@app.callback()
def reader(
    ctx: typer.Context,
    device: str | None = typer.Option(
        None, help="pcsc, pcsc:NAME, nfc:usb[:BUS:DEV] or nfc:udp:HOST:PORT."
    ),
    server: str | None = typer.Option(None, help="The Moulin server, e.g. http://10.0.0.2:8000"),
    token: Path | None = typer.Option(None, help="File holding this till's device token."),
    journal: Path | None = typer.Option(
        None, help="The local tap journal (default: DATA_DIR/reader/journal.db)."
    ),
) -> None:
    """Run the daemon: `moulin reader --device pcsc --server URL --token FILE`."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = journal
        return
    if device is None or server is None or token is None:
        context.fail("--device, --server and --token are needed (see --help)")
    run_daemon(device, server, read_token(token), journal or default_journal())


def run_daemon(device: str, server: str, token: str, journal_path: Path) -> None:
    from cardpay.reader.daemon import ReaderDaemon
    from cardpay.reader.journal import Journal
    from hardware.readers import open_reader

    try:
        card_reader = open_reader(device)
    except ValueError as exc:
        context.fail(str(exc))
    logs.set_process_fields(device=f"reader:{card_reader.name}")
    journal = Journal(journal_path)
    daemon = ReaderDaemon(
        reader=card_reader,
        journal=journal,
        server=server,
        token=token,
        snapshot_path=journal_path.with_name("snapshot.json"),
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %s: stopping", signal.Signals(signum).name)
        # Not here: this handler runs in the thread that may hold the reader, and
        # closing the reader waits for that thread to let go of it.
        threading.Thread(target=daemon.stop, name="reader-stop").start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # What is loaded now lives as long as the daemon: spare every tap the collector's full
    # passes over it.
    gc.collect()
    gc.freeze()
    try:
        daemon.run()
    finally:
        journal.close()


@app.command("status")
def status(
    ctx: typer.Context,
    journal: Path | None = typer.Option(None, help="The daemon's journal (default as above)."),
) -> None:
    """Connected to the server? Taps waiting, last sync, snapshot age."""
    from cardpay.reader.status import read_status

    path = journal or ctx.obj or default_journal()
    try:
        found = read_status(path)
    except FileNotFoundError as exc:
        context.fail(str(exc))
    for line in found.lines(datetime.now(UTC)):
        context.console.print(line, highlight=False)
    if found.server_state != "online":
        raise typer.Exit(1)
