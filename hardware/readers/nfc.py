"""nfcpy card reader driver: a USB reader nfcpy drives itself (``usb:…``), or nfcpy's
simulated reader ``udp:HOST:PORT`` that talks to the tag emulator.

=================  ==============================================================
tag                what is read
=================  ==============================================================
Type 2 (NXP)       UID from anticollision; GET_VERSION (nfcpy's activation) →
                   NTAG213/215/216; READ of pages 0–3, whose UID bytes must match
Type 2 (other)     UID; kind ``ntag21x`` or ``unknown``
Type 4A            UID; GetVersion ``90 60`` → NTAG 424 DNA; the NDEF message and
                   its URI (the SUN URL) through nfcpy's Type 4 NDEF support.
                   Not yet covered by tests: the tag emulator has no Type 4 tag
LED and buzzer     none: nfcpy gives no portable way; ``feedback`` only logs
=================  ==============================================================

Type A at 106 kbit/s only. Waiting is nfcpy's sense (a udp sense with no tag waits 1 s
for an answer) with a short pause between senses, so no busy loop. A tag left in the
field is reported once. nfcpy's ``CommunicationError`` and ``TagCommandError`` become
``CardRemoved`` (time-outs, broken link) or ``CardProtocolError`` (bad answers).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import nfc
import nfc.clf
import nfc.tag
from nfc.tag.tt2 import Type2Tag
from nfc.tag.tt4 import Type4Tag

from hardware.errors import CardProtocolError, CardRemoved, HardwareError, ReaderUnavailable
from hardware.readers.base import CardKind, CardRead, masked_uid
from hardware.readers.ndef import first_uri

logger = logging.getLogger(__name__)

_NTAG_PRODUCTS = {
    "NTAG213": CardKind.NTAG213,
    "NTAG215": CardKind.NTAG215,
    "NTAG216": CardKind.NTAG216,
}
_GONE = (nfc.tag.TIMEOUT_ERROR, nfc.tag.RECEIVE_ERROR)


def _converted(exc: Exception, doing: str) -> HardwareError:
    """Our exception for an nfcpy one."""
    if isinstance(exc, nfc.tag.TagCommandError):
        if exc.errno in _GONE:
            return CardRemoved(f"tag left the field during {doing}: {exc}")
        return CardProtocolError(f"{doing}: {exc}")
    if isinstance(exc, nfc.clf.TimeoutError | nfc.clf.BrokenLinkError):
        return CardRemoved(f"tag left the field during {doing}: {exc!r}")
    return CardProtocolError(f"{doing}: {exc!r}")


def _uid_only(uid: bytes) -> CardRead:
    return CardRead(uid=uid, kind=CardKind.UNKNOWN, reader="nfc")


def type2_read(tag: Any, uid: bytes) -> CardRead:
    product = str(tag.product)
    kind = next((k for name, k in _NTAG_PRODUCTS.items() if name in product), None)
    if kind is None:
        kind = CardKind.NTAG21X if product.startswith("NXP") else CardKind.UNKNOWN
    header = bytes(tag.read(0))
    if uid[:3] != header[:3] or (len(uid) == 7 and uid[3:7] != header[4:8]):
        raise CardProtocolError("Type 2 READ: page 0–1 UID differs from anticollision")
    return CardRead(uid=uid, kind=kind, reader="", tag_type=f"Type2Tag {product}")


def type4_read(tag: Any, uid: bytes) -> CardRead:
    answer = bytes(tag.transceive(bytes.fromhex("9060000000")))
    is_424 = answer[-2:] == b"\x91\xaf" and answer[:2] == b"\x04\x04" and answer[3:4] == b"\x30"
    kind = CardKind.NTAG424_DNA if is_424 else CardKind.UNKNOWN
    ndef = bytes(tag.ndef.octets) if tag.ndef is not None else None
    sun_url = first_uri(ndef) if ndef and is_424 else None
    return CardRead(uid=uid, kind=kind, reader="", tag_type="Type4Tag", ndef=ndef, sun_url=sun_url)


class NfcReader:
    """A reader opened through nfcpy at ``path`` (``usb``, ``usb:BUS:DEV``, ``udp:H:P``)."""

    def __init__(self, path: str, *, pause: float = 0.1) -> None:
        self._path = path
        self._pause = pause
        self._clf: Any = None
        self._present: bytes | None = None
        self._busy = threading.Lock()
        self._closed = threading.Event()

    @property
    def name(self) -> str:
        return f"nfc:{self._path}"

    def _frontend(self) -> Any:
        if self._clf is None:
            try:
                self._clf = nfc.ContactlessFrontend(self._path)
            except OSError as exc:
                raise ReaderUnavailable(f"cannot open NFC reader {self._path}: {exc}") from exc
        return self._clf

    def wait_for_card(self, timeout: float) -> CardRead | None:
        deadline = time.monotonic() + timeout
        with self._busy:
            while not self._closed.is_set() and time.monotonic() < deadline:
                target = self._sense()
                uid = bytes(target.sdd_res) if target is not None else None
                if uid is None or uid == self._present:
                    self._present = uid  # a tag left in the field is reported once
                    self._closed.wait(min(self._pause, max(0.0, deadline - time.monotonic())))
                    continue
                self._present = uid
                return self._read(target, uid)
        return None

    def _sense(self) -> Any:
        clf = self._frontend()
        try:
            return clf.sense(nfc.clf.RemoteTarget("106A"), iterations=1)
        except nfc.clf.CommunicationError as exc:
            logger.debug("sense failed: %r", exc)
            return None
        except OSError as exc:
            self._drop_frontend()
            raise ReaderUnavailable(f"NFC reader {self._path} failed: {exc}") from exc

    def _read(self, target: Any, uid: bytes) -> CardRead:
        started = time.perf_counter()
        clf = self._frontend()
        try:
            tag = nfc.tag.activate(clf, target)
            if tag is None:
                raise self._activation_failure(clf, uid)
            if isinstance(tag, Type2Tag):
                read = type2_read(tag, uid)
            elif isinstance(tag, Type4Tag):
                read = type4_read(tag, uid)
            else:
                raise CardProtocolError(f"unsupported tag type {type(tag).__name__}")
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
            error = _converted(exc, "read")
            logger.warning("tag %s on %s: %s", masked_uid(uid), self._path, error)
            if not isinstance(error, CardProtocolError):
                raise error from exc
            read = _uid_only(uid)
        except CardProtocolError as exc:
            # The UID came with anticollision; an odd answer after it does not lose the
            # tap: it goes to the server as a UID card, and the server decides.
            logger.warning("tag %s on %s: %s; sent as a UID card", masked_uid(uid),
                           self._path, exc)
            read = _uid_only(uid)
        except HardwareError as exc:
            logger.warning("tag %s on %s: %s", masked_uid(uid), self._path, exc)
            raise
        elapsed = (time.perf_counter() - started) * 1000
        logger.info(
            "tag %s (%s) on %s read in %.1f ms",
            masked_uid(uid),
            read.kind.value,
            self._path,
            elapsed,
        )
        return CardRead(
            uid=read.uid,
            kind=read.kind,
            reader=self.name,
            tag_type=read.tag_type,
            ndef=read.ndef,
            sun_url=read.sun_url,
        )

    def _activation_failure(self, clf: Any, uid: bytes) -> HardwareError:
        """nfcpy gives no reason; a tag still answering its UID sent something wrong."""
        try:
            still_there = clf.sense(nfc.clf.RemoteTarget("106A", sel_req=bytearray(uid)))
        except nfc.clf.CommunicationError:
            still_there = None
        if still_there is None:
            return CardRemoved("tag left the field before it could be identified")
        return CardProtocolError("tag answered its UID but not the identification commands")

    def feedback(self, accepted: bool) -> None:
        logger.debug("no LED/buzzer through nfcpy; verdict %s not shown", accepted)

    def _drop_frontend(self) -> None:
        if self._clf is not None:
            self._clf.close()
            self._clf = None

    def close(self) -> None:
        self._closed.set()
        with self._busy:
            self._drop_frontend()
