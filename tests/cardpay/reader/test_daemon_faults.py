"""Faults on the real stack: the server going away in the middle of a burst of taps, the
daemon restarted offline, and the daemon killed with SIGKILL at random moments."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cardpay.reader.status import read_status
from firmware_mocks.cards import Kind
from firmware_mocks.vpcd_card import VirtualCard
from parent_portal.app import create_app
from school.settings import Settings
from tests.cardpay.reader.conftest import RunningDaemon
from tests.cardpay.reader.stack import Canteen, LiveServer, meals_charged, open_canteen, taps
from tests.hardware.pcscd import Pcscd

HOLD = 8000
KINDS = [Kind.NTAG424_DNA, Kind.MIFARE_CLASSIC_1K] * 3


def tap(pcscd: Pcscd, card: VirtualCard, hold_ms: float = HOLD) -> None:
    pcscd.wait_until_empty()
    card.tap(hold_ms, until_feedback=True)


def test_server_stopped_during_a_burst_every_tap_is_charged_once_in_order(
    pcscd: Pcscd,
    session: Session,
    server: LiveServer,
    engine: Engine,
    start_daemon: Callable[..., RunningDaemon],
) -> None:
    canteen = open_canteen(session, KINDS)
    running = start_daemon(server.url, canteen.token)
    running.wait_for_snapshot()
    cards = [canteen.card(h, pcscd.port) for h in canteen.holders]
    tap(pcscd, cards[0])
    tap(pcscd, cards[1])
    server.stop()
    tap(pcscd, cards[2])
    tap(pcscd, cards[3])
    assert running.journal.queue_length() == 2
    server.start()
    tap(pcscd, cards[4])  # goes out after the two journaled ones
    tap(pcscd, cards[5])
    running.wait_for_empty_queue()

    assert [[(f.green, f.beeps) for f in c.feedback] for c in cards] == [[(True, 1)]] * 6
    recorded = taps(engine)
    assert [t.card_uid for t in recorded] == [h.uid.hex().upper() for h in canteen.holders]
    assert [t.decided_offline for t in recorded] == [False, False, True, True, False, False]
    assert all(t.accepted for t in recorded)
    assert [meals_charged(engine, h.pupil_id) for h in canteen.holders] == [1] * 6


def test_a_daemon_restarted_offline_decides_from_the_snapshot_on_disk(
    pcscd: Pcscd,
    canteen: Canteen,
    server: LiveServer,
    engine: Engine,
    start_daemon: Callable[..., RunningDaemon],
) -> None:
    first = start_daemon(server.url, canteen.token)
    first.wait_for_snapshot()
    first.stop()
    server.stop()
    second = start_daemon(server.url, canteen.token)
    assert second.daemon.snapshot is not None  # read back from disk
    card = canteen.card(canteen.holders[1], pcscd.port)
    tap(pcscd, card)
    stranger = VirtualCard(Kind.MIFARE_CLASSIC_1K, bytes.fromhex("0BADCAFE"), port=pcscd.port)
    tap(pcscd, stranger)
    assert [(f.green, f.beeps) for f in card.feedback] == [(True, 1)]
    assert [(f.red, f.beeps) for f in stranger.feedback] == [(True, 2)]
    server.start()
    second.wait_for_empty_queue()
    mine, unknown = taps(engine)
    assert (mine.accepted, mine.decided_offline) == (True, True)
    assert (unknown.accepted, unknown.reason) == (False, "unknown_card")
    assert meals_charged(engine, canteen.holders[1].pupil_id) == 1


class DaemonProcess:
    """`moulin reader` in its own process, as systemd would run it."""

    def __init__(self, url: str, token_file: Path, journal: Path, log: Path) -> None:
        self.command = [
            sys.executable,
            "-m",
            "moulin.cli",
            "reader",
            "--device",
            "pcsc:Virtual PCD",
            "--server",
            url,
            "--token",
            str(token_file),
            "--journal",
            str(journal),
        ]
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ)
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()  # never leave a daemon behind, even when the test fails
            self.process.wait(10)
            raise


class Sluggish:
    """Holds each tap a random moment before the app sees it and again before the
    answer leaves, so that kills land while a tap is in flight on either side of the
    server's commit."""

    def __init__(self, app: ASGIApp, rng: random.Random) -> None:
        self.app, self.rng = app, rng

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/api/till/taps":
            await self.app(scope, receive, send)
            return

        async def late(message: Message) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(self.rng.uniform(0, 0.15))
            await send(message)

        await asyncio.sleep(self.rng.uniform(0, 0.15))
        await self.app(scope, receive, late)


def test_sigkill_at_random_moments_loses_no_acknowledged_tap_and_charges_none_twice(
    pcscd: Pcscd,
    session: Session,
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    server = LiveServer(Sluggish(create_app(settings, engine), rng))
    server.start()
    try:
        _kill_during_a_burst(pcscd, session, server, engine, tmp_path, rng, seed)
    finally:
        server.stop()


def _kill_during_a_burst(
    pcscd: Pcscd,
    session: Session,
    server: LiveServer,
    engine: Engine,
    tmp_path: Path,
    rng: random.Random,
    seed: int,
) -> None:
    canteen = open_canteen(session, KINDS)
    token_file = tmp_path / "token"
    token_file.write_text(canteen.token)
    token_file.chmod(0o600)
    journal = tmp_path / "reader" / "journal.db"
    daemon = DaemonProcess(server.url, token_file, journal, tmp_path / "daemon.log")
    cards = [canteen.card(h, pcscd.port) for h in canteen.holders]
    daemon.start()
    try:
        kills = 0
        for card in cards:
            pcscd.wait_until_empty()
            running = card.tap_in_background(3000, until_feedback=True)
            if rng.random() < 0.7:
                time.sleep(rng.uniform(0.1, 0.8))  # reading, sending, beeping or waiting
                daemon.kill()
                kills += 1
                daemon.start()
            running.result(15)
            while not card.feedback:  # the pupil saw nothing, so taps again at once
                pcscd.wait_until_empty()
                card.tap(HOLD, until_feedback=True)
        deadline = time.monotonic() + 20
        while read_status(journal).queue and time.monotonic() < deadline:
            time.sleep(0.1)
        assert read_status(journal).queue == 0
    finally:
        daemon.stop()
    context = f"seed {seed}, {kills} kills, log:\n{(tmp_path / 'daemon.log').read_text()[-3000:]}"
    assert all(c.feedback for c in cards), context
    assert all(f.green for c in cards for f in c.feedback), context
    charged = [meals_charged(engine, h.pupil_id) for h in canteen.holders]
    assert charged == [1] * len(cards), context
    assert read_status(journal).quarantined == 0
