"""What every card reader driver offers: wait for a card, tell what it is, drive the
reader's LED and buzzer. Code that uses a reader receives one through its constructor
and sees only this module's types."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class CardKind(enum.Enum):
    """What a card is, as far as the reader can tell without secrets."""

    MIFARE_CLASSIC_1K = "mifare_classic_1k"
    MIFARE_CLASSIC_4K = "mifare_classic_4k"
    NTAG213 = "ntag213"
    NTAG215 = "ntag215"
    NTAG216 = "ntag216"
    NTAG21X = "ntag21x"  # Ultralight family; the reader could not ask which one
    NTAG424_DNA = "ntag424_dna"
    UNKNOWN = "unknown"

    @property
    def uid_only(self) -> bool:
        """True when nothing but a UID identifies the card: it can be copied."""
        return self is not CardKind.NTAG424_DNA


def masked_uid(uid: bytes) -> str:
    """A short form of a UID that is safe to log: first and last byte only."""
    if len(uid) < 2:
        return "?" * 2 * len(uid)
    return f"{uid[:1].hex().upper()}…{uid[-1:].hex().upper()}/{len(uid)}"


@dataclass(frozen=True, slots=True)
class CardRead:
    """One card seen on a reader.

    ``atr`` is set by PC/SC readers, ``tag_type`` by nfcpy (e.g. ``Type2Tag``).
    ``ndef`` is the raw NDEF message when the driver read one, and ``sun_url`` the URI
    in it for an NTAG 424 DNA: the server checks its SUN parameters (PICCData, CMAC).
    """

    uid: bytes
    kind: CardKind
    reader: str
    atr: bytes | None = None
    tag_type: str | None = None
    ndef: bytes | None = None
    sun_url: str | None = None

    @property
    def masked_uid(self) -> str:
        return masked_uid(self.uid)

    def __repr__(self) -> str:
        # Keeps full UIDs out of logs and tracebacks that format this object.
        return f"CardRead(uid={self.masked_uid}, kind={self.kind.value}, reader={self.reader!r})"


class CardReader(Protocol):
    """A contactless reader. Not thread-safe: one thread uses it, except ``close``."""

    @property
    def name(self) -> str:
        """The reader's name, for logs and status pages."""
        ...

    def wait_for_card(self, timeout: float) -> CardRead | None:
        """Block until a new card is placed (without busy polling) and read it.

        Returns None when no card came within ``timeout`` seconds. A card left on the
        reader is reported once. Raises ``CardRemoved`` when the card left mid-read,
        ``CardProtocolError`` on a garbled answer and ``ReaderUnavailable`` when the
        reader stayed unreachable for the whole wait; after each, call again.
        """
        ...

    def feedback(self, accepted: bool) -> None:
        """Show the verdict for the last card: green and one beep, or red and two.

        Does nothing on readers without LED or buzzer; never raises for a card that
        has already left.
        """
        ...

    def close(self) -> None:
        """Release the reader; a ``wait_for_card`` blocked in another thread returns."""
        ...
