"""A rig pairs one reader driver with the mock on the far side of its wire, so one
contract test suite can run against every driver."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal, Protocol

from firmware_mocks.cards import CardState, Fault, Kind
from firmware_mocks.nfc_tag import TagEmulator
from firmware_mocks.vpcd_card import VirtualCard
from hardware.readers import CardKind, CardReader, open_reader
from tests.hardware.pcscd import Pcscd

UIDS = {
    Kind.MIFARE_CLASSIC_1K: bytes.fromhex("A1B2C3D4"),
    Kind.NTAG215: bytes.fromhex("04A1B2C3D4E5F6"),
    Kind.NTAG424_DNA: bytes.fromhex("04958CAA5C5E80"),
}
EXPECTED_KIND = {
    Kind.MIFARE_CLASSIC_1K: CardKind.MIFARE_CLASSIC_1K,
    Kind.NTAG215: CardKind.NTAG215,
    Kind.NTAG424_DNA: CardKind.NTAG424_DNA,
}
FaultAction = Literal["vanish", "garbage"]


class Running(Protocol):
    def result(self, timeout: float | None = None) -> object: ...


class Rig(Protocol):
    name: str
    reader: CardReader
    kinds: tuple[Kind, ...]

    def card(self, kind: Kind) -> object: ...

    def tap(self, card: object, hold_ms: float = 8000, until_feedback: bool = True) -> Running:
        """Place the card for ``hold_ms``, or until the reader gives feedback."""
        ...

    def fault(self, card: object, action: FaultAction) -> None:
        """Make the card's next read misbehave halfway through."""
        ...

    def close(self) -> None: ...


class PcscRig:
    name = "pcsc"
    kinds = (Kind.MIFARE_CLASSIC_1K, Kind.NTAG215, Kind.NTAG424_DNA)

    def __init__(self, pcscd: Pcscd) -> None:
        self.pcscd = pcscd
        pcscd.wait_until_empty()  # the previous test's card may still look present
        self.reader = open_reader("pcsc")

    def card(self, kind: Kind) -> VirtualCard:
        return VirtualCard(kind, UIDS[kind], port=self.pcscd.port)

    def tap(self, card: object, hold_ms: float = 8000, until_feedback: bool = True) -> Running:
        assert isinstance(card, VirtualCard)
        # A hand lifts a card for longer than pcscd's 400 ms poll; without this pause vpcd
        # can hand pcscd the new connection without ever reporting the reader empty.
        self.pcscd.wait_until_empty()
        return card.tap_in_background(hold_ms, until_feedback=until_feedback)

    def fault(self, card: object, action: FaultAction) -> None:
        assert isinstance(card, VirtualCard)
        # Mid-read: after the UID, on the last step each kind needs.
        step = {
            Kind.MIFARE_CLASSIC_1K: bytes.fromhex("FFCA"),
            Kind.NTAG215: bytes.fromhex("FF000000"),
            Kind.NTAG424_DNA: bytes.fromhex("00B0"),
        }[card.state.kind]
        card.inject(Fault(action, on=step))

    def close(self) -> None:
        self.reader.close()


class NfcRig:
    name = "nfc"
    kinds = (Kind.NTAG215,)

    def __init__(self) -> None:
        self.emulator = TagEmulator()
        self.reader = open_reader(f"nfc:{self.emulator.path}")

    def card(self, kind: Kind) -> CardState:
        return CardState(kind, UIDS[kind])

    def tap(self, card: object, hold_ms: float = 8000, until_feedback: bool = True) -> Running:
        assert isinstance(card, CardState)
        # nfcpy readers show no feedback, so a tap 'until feedback' is a short one.
        hold = min(hold_ms, 1500) if until_feedback else hold_ms
        return _Thread(lambda: self.emulator.tap(card, hold))

    def fault(self, card: object, action: FaultAction) -> None:
        self.emulator.inject(Fault(action, on=b"\x30"))  # on the READ after activation

    def close(self) -> None:
        self.reader.close()
        self.emulator.close()


class _Thread:
    def __init__(self, target: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def result(self, timeout: float | None = None) -> object:
        self._thread.join(timeout)
        assert not self._thread.is_alive()
        return None
