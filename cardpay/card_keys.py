"""The five AES keys of each NTAG 424 DNA card, by key version (see docs/card_keys.md).

A card's key version is the byte the chip keeps beside each key (GetKeyVersion reads it
without authenticating): 0 is the factory's all-zero keys, 1 and up are Moulin's. The
version says which keys a card holds, so a card is never tried with keys blindly.

=======  =====================================================================
version  derivation
=======  =====================================================================
0        factory: every key 16 zero bytes
1        HMAC-SHA256 labels from the first master key (the scheme Moulin shipped
         first; its meta read and file read keys are unchanged)
2-255    NXP AN10922 AES-128 diversification (AES-CMAC of 01 ‖ M) from the
         master key that serves the version; M names UID, version and key number
=======  =====================================================================

Key numbers: 0 application master (changes keys and settings), 1 SDM meta read
(encrypts PICCData), 2 SDM file read (the CMAC), 3 and 4 unused but changed all the
same, as NXP advises, so that no key of a personalised card is a known one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

KEY_APP_MASTER, KEY_META_READ, KEY_FILE_READ = 0, 1, 2
KEY_COUNT = 5
FACTORY_VERSION, FIRST_VERSION, LAST_VERSION = 0, 1, 255
_V1_LABEL = b"moulin/ntag424/v1/"
_V1_PURPOSES = (b"app-master", b"meta-read", b"file-read", b"spare-3", b"spare-4")
_AN10922_CONSTANT = b"\x01"
_SYSTEM_ID = b"moulin-ntag424"


@dataclass(frozen=True, slots=True)
class CardKeys:
    """Keys 0-4 of one card at one key version."""

    version: int
    keys: tuple[bytes, ...]

    @property
    def app_master(self) -> bytes:
        return self.keys[KEY_APP_MASTER]

    @property
    def meta_read(self) -> bytes:
        return self.keys[KEY_META_READ]

    @property
    def file_read(self) -> bytes:
        return self.keys[KEY_FILE_READ]

    def __repr__(self) -> str:  # keys never reach a log line
        return f"CardKeys(version={self.version})"


def factory_keys() -> CardKeys:
    return CardKeys(FACTORY_VERSION, (bytes(16),) * KEY_COUNT)


def v1_key(master: bytes, key_no: int, uid: bytes) -> bytes:
    """Version 1: HMAC-SHA256(master, label ‖ UID)[:16]; the meta read key has no UID
    (PICCData is decrypted before the UID is known)."""
    subject = b"" if key_no == KEY_META_READ else uid
    label = _V1_LABEL + _V1_PURPOSES[key_no] + subject
    return hmac.new(master, label, hashlib.sha256).digest()[:16]


def an10922_key(master: bytes, data: bytes) -> bytes:
    """AN10922 §2.2 AES-128 diversification: CMAC(master, 01 ‖ M) for 16 < 1 + |M| < 32
    bytes, where CMAC's own padding is the note's (80 00 … and subkey K2)."""
    if not 15 < len(data) < 31:
        raise ValueError("AN10922 diversification input M must be 16 to 30 bytes here")
    mac = CMAC(algorithms.AES(master[:16]))
    mac.update(_AN10922_CONSTANT + data)
    return mac.finalize()


def an10922_input(uid: bytes, version: int, key_no: int) -> bytes:
    """M: the UID (none for the meta read key), version, key number, system name."""
    subject = bytes(7) if key_no == KEY_META_READ else uid.rjust(7, b"\0")[:7]
    if key_no == KEY_META_READ:
        version = 0  # one meta read key per master: PICCData comes before the version
    return subject + bytes([version, key_no]) + _SYSTEM_ID


class KeyVersions:
    """Which master key serves each key version: ``first_master`` serves 1 and up until
    ``later`` (first version → master key) says otherwise."""

    def __init__(self, first_master: bytes, later: Mapping[int, bytes] | None = None) -> None:
        for start, master in {FIRST_VERSION: first_master, **(later or {})}.items():
            if len(master) < 16:
                raise ValueError("an NTAG 424 master key needs at least 16 bytes")
            if not FIRST_VERSION <= start <= LAST_VERSION:
                raise ValueError("key versions run from 1 to 255")
        self._starts = sorted({FIRST_VERSION: first_master, **(later or {})}.items())
        self._meta_read_keys = self._derive_meta_read_keys()

    def master_for(self, version: int) -> bytes:
        if not FIRST_VERSION <= version <= LAST_VERSION:
            raise ValueError(f"no master key serves key version {version}")
        return [master for start, master in self._starts if start <= version][-1]

    @property
    def newest_start(self) -> int:
        """The first version of the newest master key: new cards get at least this."""
        return self._starts[-1][0]

    def key(self, uid: bytes, version: int, key_no: int) -> bytes:
        if version == FACTORY_VERSION:
            return bytes(16)
        master = self.master_for(version)
        if version == FIRST_VERSION:
            return v1_key(master, key_no, uid)
        return an10922_key(master, an10922_input(uid, version, key_no))

    def keys(self, uid: bytes, version: int) -> CardKeys:
        return CardKeys(version, tuple(self.key(uid, version, n) for n in range(KEY_COUNT)))

    def meta_read_keys(self) -> list[tuple[bytes, range]]:
        """Each meta read key in use, with the versions it serves."""
        return self._meta_read_keys

    def _derive_meta_read_keys(self) -> list[tuple[bytes, range]]:
        bounds = [start for start, _ in self._starts[1:]] + [LAST_VERSION + 1]
        found: list[tuple[bytes, range]] = []
        for (start, master), end in zip(self._starts, bounds, strict=True):
            if start == FIRST_VERSION:
                found.append((v1_key(master, KEY_META_READ, b""), range(1, 2)))
                start = 2
            if start < end:
                meta = an10922_key(master, an10922_input(b"", start, KEY_META_READ))
                found.append((meta, range(start, end)))
        return found

    def next_version(self, current: int | None) -> int:
        """The version a card gets when personalised: above its current one, and at
        least the newest master's first version."""
        wanted = max(self.newest_start, (current or 0) + 1)
        if wanted > LAST_VERSION:
            raise ValueError("this card has used every key version (255)")
        return wanted
