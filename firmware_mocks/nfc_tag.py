"""An NFC tag emulator for nfcpy's ``udp`` driver (``ContactlessFrontend('udp:HOST:PORT')``):
an NTAG215, seen by nfcpy as a real Type 2 tag with its UID, version and memory.

The driver sends ASCII datagrams ``<brty> <hex>`` (``106A 26``) and ``RFOFF``, without
CRC, from a fresh socket for each ``sense()``; the emulator answers each datagram's source
address and keeps no state per socket. Anticollision of a 7-byte UID: ``26`` → SENS_RES,
``93 20`` → cascade tag ``88`` + 3 UID bytes + BCC, ``93 70 …`` → SAK 04, ``95 20`` → the
last 4 bytes + BCC, ``95 70 …`` → SAK 00 (Type 2). Then NTAG commands: ``60``
(GET_VERSION), ``30 pp`` (READ, 16 bytes); anything else gets silence, as from a tag.

A tag is only in the field during a tap; faults (:class:`Fault`) make it answer one
command with garbage or leave the field without answering.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from functools import reduce
from operator import xor

from firmware_mocks.cards import GARBAGE, CardState, Fault, Kind

logger = logging.getLogger(__name__)

__all__ = ["Fault", "Kind", "TagEmulator"]

_SENS_RES = bytes.fromhex("4400")  # double-size UID, no Type 1 platform bits
_SAK_CASCADE, _SAK_TYPE2 = b"\x04", b"\x00"


def _with_bcc(data: bytes) -> bytes:
    return data + bytes([reduce(xor, data, 0)])


def anticollision(uid: bytes, command: bytes) -> bytes | None:
    """The answer of a 7-byte-UID Type 2 tag to REQA/WUPA and the select commands."""
    cl1, cl2 = b"\x88" + uid[:3], uid[3:7]
    if command in (b"\x26", b"\x52"):
        return _SENS_RES
    answers = {
        b"\x93\x20": _with_bcc(cl1),
        b"\x95\x20": _with_bcc(cl2),
        b"\x93\x70" + _with_bcc(cl1): _SAK_CASCADE,
        b"\x95\x70" + _with_bcc(cl2): _SAK_TYPE2,
    }
    return answers.get(command)


class TagEmulator:
    """A UDP endpoint for nfcpy's ``udp`` driver, with at most one tag in its field."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self._lock = threading.Lock()
        self._tag: CardState | None = None
        self._faults: list[Fault] = []
        self._polls_while_empty = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="nfc-tag-emulator", daemon=True)
        self._thread.start()

    @property
    def path(self) -> str:
        """The nfcpy device path that reaches this emulator."""
        return f"udp:{self.host}:{self.port}"

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def place(self, tag: CardState) -> None:
        if tag.kind is not Kind.NTAG215:
            raise ValueError(f"the emulator speaks Type 2 only, not {tag.kind.value}")
        with self._lock:
            self._tag = tag

    def remove(self) -> None:
        with self._lock:
            self._tag = None
            self._polls_while_empty = 0

    def tap(self, tag: CardState, hold_ms: float = 500, *, gap_timeout: float = 5.0) -> None:
        """Wait until the reader has polled an empty field (as a lifted hand makes it),
        then hold ``tag`` in the field for ``hold_ms`` unless it vanishes first."""
        deadline = time.monotonic() + gap_timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._tag is None and self._polls_while_empty > 0:
                    break
            time.sleep(0.01)
        self.place(tag)
        end = time.monotonic() + hold_ms / 1000
        while time.monotonic() < end:
            with self._lock:
                if self._tag is None:
                    return
            time.sleep(0.01)
        self.remove()

    def _take_fault(self, command: bytes) -> Fault | None:
        for fault in self._faults:
            if command.startswith(fault.on):
                self._faults.remove(fault)
                return fault
        return None

    def answer(self, command: bytes) -> bytes | None:
        """The tag's answer to one command, or None for silence."""
        with self._lock:
            tag = self._tag
            if tag is None:
                self._polls_while_empty += command in (b"\x26", b"\x52")
                return None
            reply = anticollision(tag.uid, command)
            if reply is not None:
                return reply
            fault = self._take_fault(command)
            if fault is not None and fault.action == "vanish":
                self._tag = None
                self._polls_while_empty = 0
                return None
        return GARBAGE if fault is not None else tag.type2(command)

    def _serve(self) -> None:
        while not self._closed.is_set():
            if not select.select([self._sock], [], [], 0.1)[0]:
                continue
            try:
                datagram, address = self._sock.recvfrom(1024)
            except OSError:
                return
            if datagram.startswith(b"RFOFF"):
                continue
            with contextlib.suppress(ValueError):
                brty, hexdata = datagram.split()
                reply = self.answer(bytes.fromhex(hexdata.decode("ascii")))
                if reply is not None:
                    self._sock.sendto(brty + b" " + reply.hex().encode("ascii"), address)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5)
        self._sock.close()
