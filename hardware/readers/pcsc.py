"""PC/SC card reader driver (pyscard, through pcscd): waits for a card, reads its UID,
tells its kind, reads an NTAG 424 DNA's SUN URL and shows the verdict.

=====================  ==========================================================
card                   what is read
=====================  ==========================================================
MIFARE Classic 1K/4K   UID (``FF CA 00 00 00``); kind from the PC/SC Part 3 ATR
NTAG213/215/216        UID; GET_VERSION (``60``) through the reader's direct
                       transmit where it has one (ACR122U, vpcd), else ``ntag21x``
NTAG 424 DNA           UID; GetVersion ``90 60`` + ``91 AF`` frames; NDEF file
                       E104 of application ``D2760000850101``: the SUN URL
other ISO 14443-4      UID; kind ``unknown``
=====================  ==========================================================

LED and buzzer per reader model: see :mod:`hardware.readers.pcsc_feedback`.
Survives a card lifted mid-read (``CardRemoved``), garbled answers
(``CardProtocolError``) and pcscd restarts or unplugged readers (``ReaderUnavailable``
after reconnecting with back-off for the whole wait); the next tap works after each.
"""

from __future__ import annotations

import logging
import threading
import time

from hardware.errors import CardProtocolError, CardRemoved, HardwareError, ReaderUnavailable
from hardware.readers.base import CardKind, CardRead, masked_uid
from hardware.readers.ndef import first_uri
from hardware.readers.ntag424 import Link
from hardware.readers.pcsc_feedback import ReaderProfile, profile_for
from hardware.readers.pcsc_link import CardLink, Watcher

logger = logging.getLogger(__name__)

STORAGE_ATR_PREFIX = bytes.fromhex("3B8F8001804F0CA000000306")
_STORAGE_KINDS = {b"\x00\x01": CardKind.MIFARE_CLASSIC_1K, b"\x00\x02": CardKind.MIFARE_CLASSIC_4K}
_ULTRALIGHT_FAMILY = b"\x00\x03"
_NTAG21X_BY_SIZE = {0x0F: CardKind.NTAG213, 0x11: CardKind.NTAG215, 0x13: CardKind.NTAG216}
SW_OK, SW_DESFIRE_OK, SW_MORE = 0x9000, 0x9100, 0x91AF
NDEF_AID = bytes.fromhex("D2760000850101")
NDEF_FILE = bytes.fromhex("E104")
_CHUNK = 0xF0


def _expect_ok(what: str, data: bytes, sw: int) -> bytes:
    if sw != SW_OK:
        raise CardProtocolError(f"{what}: unexpected status {sw:04X}")
    return data


def read_uid(card: CardLink) -> bytes:
    uid = _expect_ok("GET UID", *card.transmit(bytes.fromhex("FFCA000000")))
    if len(uid) not in (4, 7, 10):
        raise CardProtocolError(f"GET UID: a UID is 4, 7 or 10 bytes, got {len(uid)}")
    return uid


def type2_kind(card: CardLink) -> CardKind:
    """NTAG21x GET_VERSION through the reader's PN532 (InCommunicateThru)."""
    data = _expect_ok("GET_VERSION", *card.transmit(bytes.fromhex("FF00000003D44260")))
    if data[:2] != b"\xd5\x43" or len(data) < 3:
        raise CardProtocolError(f"GET_VERSION: not a PN532 answer ({len(data)} bytes)")
    version = data[3:]
    if data[2] != 0 or len(version) != 8:
        return CardKind.NTAG21X  # the tag stayed silent: an Ultralight without GET_VERSION
    if version[1:3] != b"\x04\x04":
        return CardKind.NTAG21X
    return _NTAG21X_BY_SIZE.get(version[6], CardKind.NTAG21X)


def iso_version(card: CardLink) -> bytes | None:
    """DESFire-family GetVersion (28 bytes) or None when the card does not know it."""
    data, sw = card.transmit(bytes.fromhex("9060000000"))
    if sw != SW_MORE:
        return None
    frames = [data]
    for _ in range(2):
        data, sw = card.transmit(bytes.fromhex("90AF000000"))
        frames.append(data)
        if sw != SW_MORE:
            break
    version = b"".join(frames)
    if sw != SW_DESFIRE_OK or [len(f) for f in frames[:2]] != [7, 7] or len(version) < 21:
        raise CardProtocolError(f"GetVersion: malformed frames (status {sw:04X})")
    return version


def iso_kind(version: bytes | None) -> CardKind:
    # NXP NT4H2421Gx GetVersion: vendor 04, type 04 (NTAG DNA), major version 30 (424).
    if version is not None and version[0] == 0x04 and version[1] == 0x04 and version[3] == 0x30:
        return CardKind.NTAG424_DNA
    return CardKind.UNKNOWN


def read_ndef(card: Link) -> bytes | None:
    """The NDEF message of a Type 4 tag, or None when it has none."""
    select_app = bytes.fromhex("00A4040007") + NDEF_AID + b"\x00"
    if card.transmit(select_app)[1] != SW_OK:
        return None
    if card.transmit(bytes.fromhex("00A4000C02") + NDEF_FILE)[1] != SW_OK:
        return None
    nlen = _expect_ok("READ BINARY NLEN", *card.transmit(bytes.fromhex("00B0000002")))
    if len(nlen) != 2:
        raise CardProtocolError(f"READ BINARY NLEN: 2 bytes expected, got {len(nlen)}")
    size, message = int.from_bytes(nlen, "big"), b""
    while len(message) < size:
        offset, want = 2 + len(message), min(_CHUNK, size - len(message))
        apdu = bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, want])
        chunk = _expect_ok("READ BINARY", *card.transmit(apdu))
        if len(chunk) != want:
            raise CardProtocolError(f"READ BINARY: {want} bytes asked, {len(chunk)} given")
        message += chunk
    return message


def identify(card: CardLink, atr: bytes, profile: ReaderProfile) -> CardRead:
    """The card's UID, then what it is and what it mirrors. Once the UID is read, a probe
    the card or reader answers oddly (readers and cards vary: a ``6D00`` to GET_VERSION)
    does not lose the tap: it goes to the server as a UID card, and the server decides."""
    uid = read_uid(card)
    try:
        kind, ndef = _probe(card, atr, profile)
    except CardProtocolError as exc:
        logger.warning("card %s: %s; sent as a UID card", masked_uid(uid), exc)
        return CardRead(uid=uid, kind=CardKind.UNKNOWN, reader=card.reader, atr=atr)
    sun_url = first_uri(ndef) if ndef else None
    return CardRead(uid=uid, kind=kind, reader=card.reader, atr=atr, ndef=ndef, sun_url=sun_url)


def _probe(card: CardLink, atr: bytes, profile: ReaderProfile) -> tuple[CardKind, bytes | None]:
    kind, ndef = CardKind.UNKNOWN, None
    if atr.startswith(STORAGE_ATR_PREFIX) and len(atr) >= 15 and atr[12] == 0x03:
        name = atr[13:15]
        kind = _STORAGE_KINDS.get(name, CardKind.UNKNOWN)
        if name == _ULTRALIGHT_FAMILY:
            kind = type2_kind(card) if profile.direct_transmit else CardKind.NTAG21X
    elif len(atr) >= 4 and atr[0] == 0x3B and atr[1] & 0xF0 == 0x80 and atr[2:4] == b"\x80\x01":
        kind = iso_kind(iso_version(card))  # ISO 14443-4: the ATR alone cannot tell
        if kind is CardKind.NTAG424_DNA:
            ndef = read_ndef(card)
    return kind, ndef


class PcscReader:
    """The PC/SC readers whose name contains ``name_filter`` (all when None)."""

    def __init__(self, name_filter: str | None = None, *, backoff_max: float = 2.0) -> None:
        self._watcher = Watcher(name_filter, backoff_max=backoff_max)
        self._name = f"pcsc:{name_filter}" if name_filter else "pcsc"
        self._card: CardLink | None = None
        self._reader: str | None = None
        self._busy = threading.Lock()
        self._closed = False

    @property
    def name(self) -> str:
        return self._name

    def wait_for_card(self, timeout: float) -> CardRead | None:
        with self._busy:
            if self._closed:
                raise ReaderUnavailable(f"{self._name} is closed")
            self._release_card()
            self._reader = None
            found = self._watcher.wait(time.monotonic() + timeout)
            if found is None or self._closed:
                return None
            return self._read(*found)

    def _read(self, reader: str, atr: bytes) -> CardRead:
        started = time.perf_counter()
        self._reader, context = reader, self._watcher.context
        try:
            if context is None:
                raise ReaderUnavailable("PC/SC context lost")
            card = CardLink(context, reader)
        except HardwareError as exc:
            self._log_failure(reader, exc)
            raise
        try:
            read = identify(card, atr, profile_for(reader))
        except HardwareError as exc:
            card.disconnect()
            self._log_failure(reader, exc)
            raise
        self._card = card
        elapsed = (time.perf_counter() - started) * 1000
        logger.info(
            "card %s (%s) on %s read in %.1f ms",
            masked_uid(read.uid),
            read.kind.value,
            reader,
            elapsed,
        )
        return read

    def _log_failure(self, reader: str, exc: HardwareError) -> None:
        if isinstance(exc, CardRemoved):
            logger.warning(
                "card lifted from %s mid-read: %s; waiting for the next tap", reader, exc
            )
        elif isinstance(exc, ReaderUnavailable):
            logger.warning("%s went away mid-read: %s; reconnecting", reader, exc)
            self._watcher.drop_context()
        else:
            logger.warning("unreadable card on %s: %s", reader, exc)

    def feedback(self, accepted: bool) -> None:
        with self._busy:
            reader, context = self._reader, self._watcher.context
            if reader is None or context is None:
                logger.debug("feedback without a card read: nothing to show")
                return
            profile = profile_for(reader)
            profile.feedback.signal(
                self._card, lambda: CardLink(context, reader, direct=True), accepted
            )
            self._release_card()

    def _release_card(self) -> None:
        if self._card is not None:
            self._card.disconnect()
            self._card = None

    def close(self) -> None:
        self._closed = True
        self._watcher.cancel()
        with self._busy:
            self._release_card()
            self._watcher.drop_context()
