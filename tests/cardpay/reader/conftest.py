"""Fixtures for the reader daemon: settings with a known card master key, a canteen, the
real app on a loopback port, and the daemon running in a thread on the vpcd reader."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from cardpay.reader.daemon import DaemonSettings, ReaderDaemon
from cardpay.reader.journal import Journal
from firmware_mocks.cards import Kind
from hardware.readers import open_reader
from parent_portal.app import create_app
from school.settings import Settings
from tests.cardpay.reader.stack import MASTER_KEY, Canteen, LiveServer, open_canteen

FAST = DaemonSettings(snapshot_every=2.0, replay_every=0.3, heartbeat_every=0.5)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "var",
        secret_key="t" * 40,
        database_url=f"sqlite:///{tmp_path / 'moulin.db'}",
        card_master_key=MASTER_KEY.hex(),
    )


@pytest.fixture
def canteen(session: Session) -> Canteen:
    return open_canteen(
        session, [Kind.NTAG424_DNA, Kind.MIFARE_CLASSIC_1K, Kind.NTAG424_DNA, Kind.NTAG215]
    )


@pytest.fixture
def server(settings: Settings, engine: Engine) -> Iterator[LiveServer]:
    live = LiveServer(create_app(settings, engine))
    live.start()
    yield live
    live.stop()


class RunningDaemon:
    """A reader daemon in a thread, stopped (and its journal closed) at the end."""

    def __init__(self, device: str, url: str, token: str, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(folder / "journal.db")
        self.daemon = ReaderDaemon(
            reader=open_reader(device),
            journal=self.journal,
            server=url,
            token=token,
            snapshot_path=folder / "snapshot.json",
            settings=FAST,
        )
        self.thread = threading.Thread(target=self.daemon.run, name="reader-daemon")
        self.thread.start()

    def wait_for_snapshot(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.daemon.snapshot is None:
            assert time.monotonic() < deadline, "the daemon never got a snapshot"
            time.sleep(0.05)

    def wait_for_empty_queue(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.journal.queue_length():
            assert time.monotonic() < deadline, "journaled taps were not replayed"
            time.sleep(0.05)

    def stop(self) -> None:
        self.daemon.stop()
        self.thread.join(15)
        assert not self.thread.is_alive()
        self.journal.close()


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., RunningDaemon]]:
    running: list[RunningDaemon] = []

    def start(url: str, token: str, device: str = "pcsc:Virtual PCD") -> RunningDaemon:
        daemon = RunningDaemon(device, url, token, tmp_path / "reader")
        running.append(daemon)
        return daemon

    yield start
    for daemon in running:
        if daemon.thread.is_alive():
            daemon.stop()
