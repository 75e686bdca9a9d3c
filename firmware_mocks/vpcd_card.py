"""A virtual contactless card that plugs into pcscd's vpcd driver over TCP, so the real
PC/SC stack (pcscd, pyscard) can be tested without a reader.

Connecting to vpcd puts the card on the reader, closing the socket takes it away. Each
message is a 2-byte big-endian length and a payload; a 1-byte payload is a control
(``00`` off, ``01`` on, ``02`` reset, ``04`` get ATR, answered with the ATR), anything
longer a command APDU, answered with the response APDU. vpcd sends ``04`` on each of
pcscd's presence polls (every 400 ms), so only longer payloads count as APDUs.

The socket sets ``TCP_NODELAY`` and re-arms ``TCP_QUICKACK`` after every ``recv``:
vpcd writes length and payload separately, and delayed ACKs would cost ~40 ms an APDU.

Tests inject faults (:class:`Fault`): answer garbage, or vanish without answering, on
the first APDU starting with given bytes; and read :attr:`VirtualCard.feedback`, the
LED/buzzer commands the card received.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass, field

from firmware_mocks.apdu import ApduSession
from firmware_mocks.cards import GARBAGE, CardState, Fault, Feedback, Kind
from firmware_mocks.ntag424_chip import Chip

logger = logging.getLogger(__name__)

__all__ = ["Chip", "Fault", "Kind", "Tap", "TapResult", "VirtualCard"]

VPCD_PORT = 35963
_CTRL_ON, _CTRL_RESET, _CTRL_ATR = 0x01, 0x02, 0x04


@dataclass
class TapResult:
    """What the card saw during one tap: each APDU with its ``time.monotonic()``."""

    apdus: list[tuple[float, bytes]] = field(default_factory=list)
    vanished: bool = False

    @property
    def first_apdu_at(self) -> float | None:
        return self.apdus[0][0] if self.apdus else None


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionError("vpcd closed the connection")
        buf += chunk
    if hasattr(socket, "TCP_QUICKACK"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    return bytes(buf)


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(len(payload).to_bytes(2, "big") + payload)


class VirtualCard:
    """One card, tapped on the vpcd reader as many times as a test likes."""

    def __init__(
        self,
        kind: Kind,
        uid: bytes,
        *,
        host: str = "127.0.0.1",
        port: int = VPCD_PORT,
        meta_key: bytes = bytes(16),
        file_key: bytes = bytes(16),
        sun_base: str = "https://moulin.example/sun",
        counter: int = 0,
        chip: Chip | None = None,
    ) -> None:
        """With ``chip``, an NTAG 424 DNA answers with that chip's keys, files and secure
        messaging (a blank card: ``Chip(uid)``) instead of a fixed SUN URL."""
        if chip is not None and (kind is not Kind.NTAG424_DNA or chip.uid != uid):
            raise ValueError("a chip is an NTAG 424 DNA with the card's own UID")
        self.state = CardState(
            kind, uid, meta_key=meta_key, file_key=file_key, sun_base=sun_base, counter=counter,
            chip=chip,
        )
        self.address = (host, port)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    @property
    def feedback(self) -> list[Feedback]:
        """LED/buzzer commands received so far, oldest first."""
        with self.state.lock:
            return list(self.state.feedback)

    @property
    def counter(self) -> int:
        """The SUN read counter (NTAG 424 DNA): the value mirrored by the last read."""
        return self.state.counter

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, apdu: bytes) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if apdu.startswith(fault.on):
                    self._faults.remove(fault)
                    return fault
        return None

    def _connect(self, timeout: float) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection(self.address, timeout=1.0)
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)  # vpcd not listening yet (pcscd starting)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock

    def tap(
        self,
        hold_ms: float = 500,
        *,
        until_apdus: int | None = None,
        until_feedback: bool = False,
        connect_timeout: float = 10.0,
    ) -> TapResult:
        """Place the card, serve the reader, take the card away after ``hold_ms``, after
        ``until_apdus`` APDUs, or right after answering an LED/buzzer command."""
        result = TapResult()
        with self._connect(connect_timeout) as sock:
            deadline = time.monotonic() + hold_ms / 1000
            # A time-out means held long enough; a closed connection, pcscd went away.
            with contextlib.suppress(TimeoutError, ConnectionError):
                self._serve(sock, deadline, result, until_apdus, until_feedback)
        logger.debug("tap over: %d APDUs, vanished=%s", len(result.apdus), result.vanished)
        return result

    def _serve(
        self,
        sock: socket.socket,
        deadline: float,
        result: TapResult,
        until_apdus: int | None,
        until_feedback: bool,
    ) -> None:
        session = ApduSession(self.state)
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            message = _recv_exact(sock, int.from_bytes(_recv_exact(sock, 2), "big"))
            if len(message) == 1:
                if message[0] == _CTRL_ATR:
                    _send(sock, self.state.atr)
                elif message[0] in (_CTRL_ON, _CTRL_RESET):
                    session = ApduSession(self.state)
                continue
            result.apdus.append((time.monotonic(), message))
            fault = self._take_fault(message)
            if fault is not None and fault.action == "vanish":
                result.vanished = True
                return
            if fault is None:
                _send(sock, session.respond(message))
            else:
                _send(sock, fault.sw if fault.action == "status" else GARBAGE)
            if until_apdus is not None and len(result.apdus) >= until_apdus:
                return
            if until_feedback and message[:3] == b"\xff\x00\x40":
                return

    def tap_in_background(self, hold_ms: float = 500, **options: object) -> Tap:
        """Start :meth:`tap` in a thread; collect it with :meth:`Tap.result`."""
        return Tap(self, hold_ms, options)


class Tap:
    """A tap running in its own thread."""

    def __init__(self, card: VirtualCard, hold_ms: float, options: dict[str, object]) -> None:
        self._result: TapResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(card, hold_ms, options), name="virtual-card-tap", daemon=True
        )
        self._thread.start()

    def _run(self, card: VirtualCard, hold_ms: float, options: dict[str, object]) -> None:
        try:
            self._result = card.tap(hold_ms, **options)  # type: ignore[arg-type]
        except BaseException as exc:  # handed to the thread that collects the tap
            self._error = exc

    def result(self, timeout: float | None = None) -> TapResult:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the tap is still going on")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result
