"""The daemon through nfcpy's udp driver and the NTAG215 tag emulator, to the server."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.engine import Engine

from firmware_mocks.cards import CardState
from firmware_mocks.nfc_tag import TagEmulator
from tests.cardpay.reader.conftest import RunningDaemon
from tests.cardpay.reader.stack import Canteen, LiveServer, meals_charged, taps


def test_an_ntag215_through_nfcpy_is_charged_once_even_held_on_the_reader(
    canteen: Canteen,
    server: LiveServer,
    engine: Engine,
    start_daemon: Callable[..., RunningDaemon],
) -> None:
    emulator = TagEmulator()
    try:
        start_daemon(server.url, canteen.token, device=f"nfc:{emulator.path}")
        holder = canteen.holders[3]  # the NTAG215: a UID-only card
        emulator.tap(CardState(holder.kind, holder.uid), hold_ms=2500)
        deadline = time.monotonic() + 10
        while not taps(engine) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        emulator.close()
    [tap] = taps(engine)
    assert (tap.accepted, tap.card_uid) == (True, holder.uid.hex().upper())
    assert meals_charged(engine, holder.pupil_id) == 1
