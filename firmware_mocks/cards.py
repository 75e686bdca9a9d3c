"""What a contactless card answers, independent of the wire that carries it: ATRs and
APDU answers as a PC/SC reader passes them on, and the raw Type 2 commands an NFC reader
sends. The virtual card (vpcd) and the tag emulator (nfcpy udp) both drive these.

Facts used (see HARDWARE_FACTS.md): PC/SC Part 3 storage-card ATR, ``FF CA`` GET DATA,
ACR122U ``FF 00 40`` LED/buzzer and ``FF 00 00 00 … D4 42`` direct transmit, NTAG21x
GET_VERSION and READ, NTAG 424 DNA GetVersion in three frames and its NDEF application.
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from firmware_mocks import sun
from firmware_mocks.ntag424_chip import Chip

OK = b"\x90\x00"
NDEF_AID = bytes.fromhex("D2760000850101")
CC_FILE, NDEF_FILE = b"\xe1\x03", b"\xe1\x04"
# The capability container file of a factory NTAG 424 DNA (NDEF file E104, 256 bytes).
CC_424 = bytes.fromhex("001720010000FF0406E104010000000506E10500808283")
VERSION_215 = bytes.fromhex("0004040201001103")
VERSION_424 = (
    bytes.fromhex("04040230001105"),  # hardware: NXP, NTAG, 424 DNA, 416 bytes, ISO 14443-4
    bytes.fromhex("04040201001105"),  # software
)


GARBAGE = bytes.fromhex("133742")  # three bytes ending in no known status word


@dataclass(frozen=True, slots=True)
class Fault:
    """Misbehave once, on the first command that starts with ``on`` (any if empty):
    answer garbage, vanish (leave the field) without answering, or answer only the status
    word ``sw`` (``6D00``, say: a card that does not know the command)."""

    action: Literal["garbage", "vanish", "status"]
    on: bytes = b""
    sw: bytes = b"\x6d\x00"


class Kind(enum.Enum):
    MIFARE_CLASSIC_1K = "mifare_classic_1k"
    NTAG215 = "ntag215"
    NTAG424_DNA = "ntag424_dna"


def _storage_atr(card_name: bytes) -> bytes:
    """PC/SC Part 3 ATR of an ISO 14443A-3 storage card; TCK = XOR from T0 on."""
    body = bytes.fromhex("8F8001804F0CA000000306") + b"\x03" + card_name + bytes(4)
    tck = 0
    for byte in body:
        tck ^= byte
    return b"\x3b" + body + bytes([tck])


ATRS = {
    Kind.MIFARE_CLASSIC_1K: _storage_atr(b"\x00\x01"),
    Kind.NTAG215: _storage_atr(b"\x00\x03"),
    Kind.NTAG424_DNA: bytes.fromhex("3B8180018080"),
}


@dataclass(frozen=True, slots=True)
class Feedback:
    """One LED/buzzer command the card saw; ``red``/``green`` None = left unchanged."""

    at: float  # time.monotonic()
    command: bytes
    red: bool | None
    green: bool | None
    beeps: int


def parse_acr122_feedback(apdu: bytes, at: float) -> Feedback:
    p2, reps, link = apdu[3], apdu[7], apdu[8]
    red = bool(p2 & 0x01) if p2 & 0x04 else None
    green = bool(p2 & 0x02) if p2 & 0x08 else None
    beeps_per_rep = {0: 0, 1: 1, 2: 1, 3: 2}.get(link, 0)
    return Feedback(at=at, command=apdu, red=red, green=green, beeps=reps * beeps_per_rep)


def ntag215_memory(uid: bytes, message: bytes) -> bytearray:
    """135 pages of an NTAG215: UID with check bytes, CC, one NDEF TLV."""
    if len(uid) != 7:
        raise ValueError("an NTAG215 has a 7-byte UID")
    bcc0 = 0x88 ^ uid[0] ^ uid[1] ^ uid[2]
    bcc1 = uid[3] ^ uid[4] ^ uid[5] ^ uid[6]
    memory = bytearray(135 * 4)
    memory[0:12] = uid[:3] + bytes([bcc0]) + uid[3:] + bytes([bcc1, 0x48, 0, 0])
    memory[12:16] = bytes.fromhex("E1103E00")
    tlv = b"\x03" + bytes([len(message)]) + message + b"\xfe"
    memory[16 : 16 + len(tlv)] = tlv
    return memory


def uri_message(url: str) -> bytes:
    """A one-record NDEF message holding ``url`` (URI RTD, 'https://' abbreviated)."""
    code, rest = (0x04, url[8:]) if url.startswith("https://") else (0x00, url)
    payload = bytes([code]) + rest.encode("utf-8")
    if len(payload) > 255:
        raise ValueError("URL too long for a short record")
    return bytes([0xD1, 0x01, len(payload)]) + b"U" + payload


@dataclass
class CardState:
    """Everything a card remembers between and during taps."""

    kind: Kind
    uid: bytes
    meta_key: bytes = bytes(16)
    file_key: bytes = bytes(16)
    sun_base: str = "https://moulin.example/sun"
    counter: int = 0
    chip: Chip | None = None  # an NTAG 424 DNA with its keys and files (ntag424_chip)
    feedback: list[Feedback] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if len(self.uid) not in (4, 7, 10):
            raise ValueError("a UID is 4, 7 or 10 bytes")
        if self.kind is not Kind.MIFARE_CLASSIC_1K and len(self.uid) != 7:
            raise ValueError(f"an {self.kind.value} has a 7-byte UID")
        self.memory = bytearray()
        if self.kind is Kind.NTAG215:
            self.memory = ntag215_memory(self.uid, uri_message("https://moulin.example/c"))

    @property
    def atr(self) -> bytes:
        return ATRS[self.kind]

    def next_sun_file(self) -> bytes:
        """The NDEF file as one read shows it: the counter rises, the URL is fresh."""
        with self.lock:
            self.counter += 1
            counter = self.counter
        built = sun.build_sun_url(
            self.sun_base,
            uid=self.uid,
            counter=counter,
            meta_key=self.meta_key,
            file_key=self.file_key,
        )
        message = uri_message(built.url)
        return len(message).to_bytes(2, "big") + message

    def record_feedback(self, apdu: bytes) -> Feedback:
        event = parse_acr122_feedback(apdu, time.monotonic())
        with self.lock:
            self.feedback.append(event)
        return event

    def type2(self, command: bytes) -> bytes | None:
        """A raw NTAG215 command (no CRC); None = the tag stays silent."""
        if self.kind is not Kind.NTAG215 or not command:
            return None
        if command == b"\x60":
            return VERSION_215
        if command[0] == 0x30 and len(command) == 2:
            start = command[1] * 4
            if start >= len(self.memory):
                return b"\x00"  # NAK
            return bytes((self.memory + self.memory[:16])[start : start + 16])
        return None
