"""The thin layer between the PC/SC driver and pyscard's ``smartcard.scard`` calls:
waiting for card events without polling, one connected card, and the translation of
PC/SC result codes into our exceptions.

Why not ``CardMonitor`` or ``CardRequest``: pyscard 2.3.1's ``CardMonitor`` runs one
thread per process that stops for good when pcscd goes away (``SCARD_E_NO_SERVICE``
sets its stop event) and cannot be restarted; ``CardRequest(newcardonly=True)`` forgets
the reader state between calls, so a card placed while the till was busy with the
previous one is missed until it is lifted. Here the last state of each reader,
including pcsc-lite's event counter (the high 16 bits), is kept between calls.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, field

from smartcard import scard

from hardware.errors import CardProtocolError, CardRemoved, HardwareError, ReaderUnavailable

logger = logging.getLogger(__name__)

PNP = "\\\\?PnP?\\Notification"
_GONE_CARD = {
    scard.SCARD_W_REMOVED_CARD,
    scard.SCARD_E_NO_SMARTCARD,
    scard.SCARD_W_RESET_CARD,
    scard.SCARD_W_UNPOWERED_CARD,
    scard.SCARD_W_UNRESPONSIVE_CARD,
    scard.SCARD_E_NOT_TRANSACTED,
    scard.SCARD_E_PROTO_MISMATCH,
}
_GONE_SERVICE = {
    scard.SCARD_E_NO_SERVICE,
    scard.SCARD_E_SERVICE_STOPPED,
    scard.SCARD_F_COMM_ERROR,
    scard.SCARD_E_INVALID_HANDLE,
    scard.SCARD_E_READER_UNAVAILABLE,
    scard.SCARD_E_UNKNOWN_READER,
    scard.SCARD_E_NO_READERS_AVAILABLE,
}
_EVENT_COUNT_MASK = 0xFFFF0000


class CardBusy(HardwareError):
    """Another program holds the card (an exclusive connection was asked for)."""


class _Outcome(enum.Enum):
    STOP = "time-out or cancelled"
    RETRY = "nothing new yet"


def _message(hresult: int) -> str:
    return f"{scard.SCardGetErrorMessage(hresult).strip()} (0x{hresult & 0xFFFFFFFF:08X})"


def error_for(hresult: int, doing: str) -> HardwareError:
    """Our exception for a failed PC/SC call."""
    if hresult in _GONE_CARD:
        return CardRemoved(f"card left the reader during {doing}: {_message(hresult)}")
    if hresult in _GONE_SERVICE:
        return ReaderUnavailable(f"reader or pcscd gone during {doing}: {_message(hresult)}")
    return HardwareError(f"{doing} failed: {_message(hresult)}")


class CardLink:
    """A card connected in shared mode; closed by :meth:`disconnect`."""

    def __init__(
        self, context: int, reader: str, *, direct: bool = False, exclusive: bool = False
    ) -> None:
        """Connect to the card on ``reader``, or with ``direct`` to the reader itself
        (escape commands; works with no card present). ``exclusive`` keeps every other
        program off the card (personalising: no till may interleave its commands);
        another program holding it raises ``CardBusy``."""
        share, protocols = (
            (scard.SCARD_SHARE_DIRECT, 0)
            if direct
            else (
                scard.SCARD_SHARE_EXCLUSIVE if exclusive else scard.SCARD_SHARE_SHARED,
                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            )
        )
        hresult, self._handle, protocol = scard.SCardConnect(context, reader, share, protocols)
        if hresult == scard.SCARD_E_SHARING_VIOLATION:
            raise CardBusy(f"another program is using the card: {_message(hresult)}")
        if hresult != scard.SCARD_S_SUCCESS:
            raise error_for(hresult, "connect")
        t0 = protocol == scard.SCARD_PROTOCOL_T0
        self._pci = scard.SCARD_PCI_T0 if t0 else scard.SCARD_PCI_T1
        self.reader = reader

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        """Send a command APDU; return the data and the status word (e.g. 0x9000)."""
        hresult, response = scard.SCardTransmit(self._handle, self._pci, list(apdu))
        if hresult != scard.SCARD_S_SUCCESS:
            raise error_for(hresult, f"APDU {apdu[:2].hex().upper()}")
        if not response:
            # vpcd (and a reader that loses the card between frames) answers nothing at
            # all instead of an error when the card vanishes mid-command.
            raise CardRemoved(f"APDU {apdu[:2].hex().upper()}: the card stopped answering")
        if len(response) < 2:
            raise CardProtocolError(f"APDU {apdu[:2].hex().upper()}: answer without status word")
        return bytes(response[:-2]), response[-2] << 8 | response[-1]

    def control(self, code: int, data: bytes) -> bytes:
        hresult, response = scard.SCardControl(self._handle, code, list(data))
        if hresult != scard.SCARD_S_SUCCESS:
            raise error_for(hresult, "reader escape command")
        return bytes(response)

    def disconnect(self) -> None:
        scard.SCardDisconnect(self._handle, scard.SCARD_LEAVE_CARD)


@dataclass
class Watcher:
    """Waits for card insertions on the readers whose name contains ``name_filter``.

    Owns one PC/SC context, re-established with back-off when pcscd restarts.
    """

    name_filter: str | None
    backoff_max: float = 2.0
    context: int | None = None
    _states: dict[str, int] = field(default_factory=dict)
    _pending: list[tuple[str, bytes]] = field(default_factory=list)
    _backoff: float = 0.1
    _unavailable_since: float | None = None
    _missing_reader: bool = False
    _cancelled: bool = False

    def _establish(self) -> int | None:
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            if self._unavailable_since is None:
                self._unavailable_since = time.monotonic()
                logger.warning("pcscd unreachable (%s); retrying with back-off", _message(hresult))
            return None
        if self._unavailable_since is not None:
            logger.info(
                "pcscd reachable again after %.1f s", time.monotonic() - self._unavailable_since
            )
            self._unavailable_since = None
        self._backoff = 0.1
        self._states.clear()
        self.context = int(context)
        return self.context

    def drop_context(self) -> None:
        if self.context is not None:
            scard.SCardReleaseContext(self.context)
            self.context = None

    def cancel(self) -> None:
        """Wake a thread blocked in :meth:`wait` (from any thread)."""
        self._cancelled = True
        if self.context is not None:
            scard.SCardCancel(self.context)

    def _readers(self, context: int) -> list[str]:
        hresult, names = scard.SCardListReaders(context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            raise error_for(hresult, "list readers")
        return [n for n in names if self.name_filter is None or self.name_filter in n]

    def wait(self, deadline: float) -> tuple[str, bytes] | None:
        """The next new card as (reader, ATR), or None at the deadline or on cancel."""
        if self._pending:
            return self._pending.pop(0)
        while (remaining := deadline - time.monotonic()) > 0:
            context = self.context if self.context is not None else self._establish()
            if context is None:
                time.sleep(min(self._backoff, remaining))
                self._backoff = min(self._backoff * 2, self.backoff_max)
                continue
            try:
                found = self._wait_once(context, remaining)
            except ReaderUnavailable as exc:
                logger.warning("PC/SC connection lost: %s", exc)
                self.drop_context()
                continue
            if found is _Outcome.STOP:
                break
            if found is not _Outcome.RETRY:
                return found
        if self._cancelled:
            return None
        if self._unavailable_since is not None:
            raise ReaderUnavailable("pcscd is not reachable; is the pcscd service running?")
        if self._missing_reader:
            wanted = f"matching {self.name_filter!r}" if self.name_filter else "at all"
            raise ReaderUnavailable(f"no PC/SC reader {wanted}; is it plugged in?")
        return None

    def _wait_once(self, context: int, remaining: float) -> tuple[str, bytes] | _Outcome:
        """One blocking status call: a new card, or what to do next."""
        readers = self._readers(context)
        if not readers and not self._missing_reader:
            logger.warning("no PC/SC reader matching %r; waiting for one", self.name_filter or "*")
        self._missing_reader = not readers
        names = [*readers, PNP]
        request = [(n, self._states.get(n, scard.SCARD_STATE_UNAWARE)) for n in names]
        hresult, states = scard.SCardGetStatusChange(context, int(remaining * 1000), request)
        if hresult in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
            return _Outcome.STOP
        if hresult == scard.SCARD_E_UNKNOWN_READER:
            self._states.clear()  # a reader vanished between listing and waiting
            return _Outcome.RETRY
        if hresult != scard.SCARD_S_SUCCESS:
            raise error_for(hresult, "wait for card")
        for name, event, atr in states:
            before = self._states.get(name, scard.SCARD_STATE_UNAWARE)
            self._states[name] = event & ~scard.SCARD_STATE_CHANGED
            if (
                name == PNP
                or not event & scard.SCARD_STATE_PRESENT
                or event & scard.SCARD_STATE_MUTE
            ):
                continue
            inserted = not before & scard.SCARD_STATE_PRESENT
            replaced = (before ^ event) & _EVENT_COUNT_MASK != 0
            if inserted or replaced:
                self._pending.append((name, bytes(atr)))
        return self._pending.pop(0) if self._pending else _Outcome.RETRY
