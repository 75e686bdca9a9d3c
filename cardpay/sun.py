"""NTAG 424 DNA Secure Unique NFC (SUN): prove that a tap came from a genuine card.

On every read the card mirrors into its NDEF URL an encrypted PICCData (UID and a 24-bit
read counter) and a CMAC over them, made with keys the card never reveals (NXP AN12196).
This module decrypts and checks such a message; refusing a counter already seen (replay)
needs the database and lives in `cardpay.cards`.

Keys. One master key per deployment (at least 16 random bytes, kept out of the database)
yields every card key by HMAC-SHA256 with a purpose label, truncated to AES-128:

    meta read key    = HMAC-SHA256(master, "moulin/ntag424/v1/meta-read")[:16]
    file read key    = HMAC-SHA256(master, "moulin/ntag424/v1/file-read" || UID)[:16]
    app master key   = HMAC-SHA256(master, "moulin/ntag424/v1/app-master" || UID)[:16]

The meta read key is the same for every card because PICCData must be decrypted before
the UID is known; it only hides UID and counter from onlookers. Authenticity rests on the
file read key (the CMAC key), which differs per card, so a key pulled out of one card
forges taps for that card only. The app master key (key 0) is what provisioning writes
to the card to lock its configuration. The scheme follows nfc-developer/sdm-backend's
derive.py in spirit (HMAC-SHA256, UID-diversified file key) with our own labels.

This is key version 1. Cards personalised again, or under a newer master key, hold
later versions (AN10922 diversification): see `cardpay.card_keys` and docs/card_keys.md.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from cardpay.card_keys import (
    FIRST_VERSION,
    KEY_FILE_READ,
    LAST_VERSION,
    CardKeys,
    KeyVersions,
)
from cardpay.errors import SunForgedError, SunMalformedError

_SV1_PREFIX = bytes.fromhex("C33C00010080")  # session encryption key
_SV2_PREFIX = bytes.fromhex("3CC300010080")  # session MAC key
_UID_MIRRORED, _COUNTER_MIRRORED, _UID_LENGTH = 0x80, 0x40, 7
_LABEL = b"moulin/ntag424/v1/"


@dataclass(frozen=True)
class PiccData:
    uid: bytes
    counter: int


@dataclass(frozen=True)
class SunMessage:
    """What a reader saw in the card's URL: PICCData, CMAC, and the encrypted file data
    with the bytes the CMAC covers, when the card mirrors some."""

    picc_data: bytes
    cmac: bytes
    enc_file_data: bytes | None = None
    mac_input: bytes = b""

    @classmethod
    def from_url(cls, url: str) -> SunMessage:
        """Parse `...?picc_data=<32 hex>&cmac=<16 hex>` or `...&enc=<hex>&cmac=...`.

        With `enc`, our cards are provisioned as in AN12196: the CMAC input starts at the
        mirrored encrypted data and runs up to the CMAC, i.e. '<enc>&cmac='."""
        query = parse_qs(urlsplit(url).query)
        try:
            picc, cmac = query["picc_data"][0], query["cmac"][0]
            enc = query["enc"][0] if "enc" in query else None
            return cls(
                picc_data=bytes.fromhex(picc),
                cmac=bytes.fromhex(cmac),
                enc_file_data=bytes.fromhex(enc) if enc is not None else None,
                mac_input=f"{enc}&cmac=".encode("ascii") if enc is not None else b"",
            )
        except (KeyError, ValueError) as exc:
            raise SunMalformedError("the card's URL lacks a readable SUN message") from exc


@dataclass(frozen=True)
class VerifiedTap:
    uid: bytes
    counter: int
    file_data: bytes | None
    key_version: int = FIRST_VERSION


class Keyring:
    """Every card key, derived from the deployment's master keys (see the module doc and
    `cardpay.card_keys` for key versions).

    `later` maps a key version to the master key that serves it from then on, for a new
    master key introduced while cards of older versions keep working. When the caller
    cannot say a card's version (the till, before the database), the first `span`
    versions of each master key, up to `newest`, are tried oldest first (a card is
    personalised again rarely; each try costs ~50 us): the verified version is in the
    result, and the caller must refuse one that is not the card's own (an old message
    of a card since personalised again)."""

    def __init__(self, master_key: bytes, *, later: Mapping[int, bytes] | None = None,
                 newest: int = LAST_VERSION, span: int = 16) -> None:
        if len(master_key) < 16:
            raise ValueError("the NTAG 424 master key needs at least 16 bytes")
        self._master = master_key
        self.versions = KeyVersions(master_key, later)
        self.newest = max(newest, self.versions.newest_start)
        self.span = span

    def _derive(self, purpose: bytes) -> bytes:
        return hmac.new(self._master, _LABEL + purpose, hashlib.sha256).digest()[:16]

    @property
    def meta_read(self) -> bytes:
        return self._derive(b"meta-read")

    def file_read(self, uid: bytes) -> bytes:
        return self._derive(b"file-read" + uid)

    def app_master(self, uid: bytes) -> bytes:
        return self._derive(b"app-master" + uid)

    def card_keys(self, uid: bytes, version: int) -> CardKeys:
        return self.versions.keys(uid, version)

    def verify(self, message: SunMessage, *,
               version_of: Callable[[bytes], int | None] | None = None) -> VerifiedTap:
        """Check a SUN message with the keys of the card's key version: `version_of`
        says it from the UID (None: not known), else versions up to `newest` are tried."""
        decrypted = False
        for meta_key, served in self.versions.meta_read_keys():
            if served.start > self.newest:
                continue
            try:
                picc = decrypt_picc_data(meta_key, message.picc_data)
            except SunMalformedError:
                continue
            decrypted = True
            known = version_of(picc.uid) if version_of is not None else None
            tried = [known] if known is not None else \
                [v for v in served[: self.span] if v <= self.newest]
            for version in tried:
                if version not in served:
                    continue
                file_key = self.versions.key(picc.uid, version, KEY_FILE_READ)
                try:
                    tap = verify(message, meta_key=meta_key, file_key_for=_constant(file_key))
                except SunForgedError:
                    continue
                return replace(tap, key_version=version)
        if decrypted:
            raise SunForgedError("the card's signature does not match: a copied or forged card")
        # Shape errors come first, as before (a garbled message is not called forged).
        return verify(message, meta_key=self.meta_read, file_key_for=self.file_read)


def _constant(key: bytes) -> Callable[[bytes], bytes]:
    return lambda uid: key


def verify(message: SunMessage, *, meta_key: bytes,
           file_key_for: Callable[[bytes], bytes]) -> VerifiedTap:
    """Decrypt the PICCData, check the CMAC with the card's own key, decrypt file data.

    Raises SunMalformedError or SunForgedError; the read counter is not judged here."""
    # Shape first, so that a garbled message is reported as such, not as a forgery.
    if len(message.cmac) != 8:
        raise SunMalformedError("a SUN CMAC is 8 bytes")
    if message.enc_file_data is not None and (
            not message.enc_file_data or len(message.enc_file_data) % 16):
        raise SunMalformedError("encrypted file data comes in 16-byte blocks")
    picc = decrypt_picc_data(meta_key, message.picc_data)
    file_key = file_key_for(picc.uid)
    expected = sun_mac(file_key, picc, message.mac_input)
    if not hmac.compare_digest(expected, message.cmac):
        raise SunForgedError("the card's signature does not match: a copied or forged card")
    file_data = None
    if message.enc_file_data is not None:
        file_data = decrypt_file_data(file_key, picc, message.enc_file_data)
    return VerifiedTap(picc.uid, picc.counter, file_data)


def decrypt_picc_data(meta_key: bytes, encrypted: bytes) -> PiccData:
    if len(encrypted) != 16:
        raise SunMalformedError("PICCData is 16 bytes")
    plain = _aes_cbc_decrypt(meta_key, bytes(16), encrypted)
    tag = plain[0]
    # A wrong key or forged bytes decrypt to noise, which this check nearly always catches.
    if tag & (_UID_MIRRORED | _COUNTER_MIRRORED) != (_UID_MIRRORED | _COUNTER_MIRRORED) \
            or tag & 0x0F != _UID_LENGTH:
        raise SunMalformedError("PICCData does not decrypt to a UID and counter")
    return PiccData(uid=plain[1:8], counter=int.from_bytes(plain[8:11], "little"))


def session_mac_key(file_key: bytes, picc: PiccData) -> bytes:
    return _cmac(file_key, _SV2_PREFIX + picc.uid + _counter_bytes(picc))


def sun_mac(file_key: bytes, picc: PiccData, mac_input: bytes = b"") -> bytes:
    """The 8 bytes a card sends: the odd-indexed bytes of the full CMAC."""
    return _cmac(session_mac_key(file_key, picc), mac_input)[1::2]


def session_enc_key(file_key: bytes, picc: PiccData) -> bytes:
    return _cmac(file_key, _SV1_PREFIX + picc.uid + _counter_bytes(picc))


def file_data_iv(enc_key: bytes, picc: PiccData) -> bytes:
    block = _counter_bytes(picc) + bytes(13)
    encryptor = Cipher(algorithms.AES(enc_key), modes.ECB()).encryptor()  # noqa: S305 - one block, as NXP specifies
    return encryptor.update(block) + encryptor.finalize()


def decrypt_file_data(file_key: bytes, picc: PiccData, encrypted: bytes) -> bytes:
    if not encrypted or len(encrypted) % 16:
        raise SunMalformedError("encrypted file data comes in 16-byte blocks")
    enc_key = session_enc_key(file_key, picc)
    return _aes_cbc_decrypt(enc_key, file_data_iv(enc_key, picc), encrypted)


def _counter_bytes(picc: PiccData) -> bytes:
    return picc.counter.to_bytes(3, "little")


def _aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def _cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()
