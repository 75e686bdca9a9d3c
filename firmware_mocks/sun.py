"""The tag side of NTAG 424 DNA Secure Unique NFC: what the chip mirrors into its URL on
each read (NXP NT4H2421Gx datasheet §9.3 and AN12196). Written for the virtual card,
independently of any verifier, and checked against AN12196's test vectors."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

_SV1_PREFIX = bytes.fromhex("C33C00010080")  # session encryption key derivation
_SV2_PREFIX = bytes.fromhex("3CC300010080")  # session MAC key derivation
_PICC_TAG_UID_AND_COUNTER = 0xC7  # bit 7 UID mirrored, bit 6 counter mirrored, UID length 7
COUNTER_LIMIT = 1 << 24


def _cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def _cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def _session_vector(prefix: bytes, uid: bytes, counter: int) -> bytes:
    return prefix + uid + counter.to_bytes(3, "little")


def encrypt_picc_data(meta_key: bytes, uid: bytes, counter: int, padding: bytes) -> bytes:
    """PICCData: tag byte, UID, counter (little-endian), 5 random bytes; AES-CBC, zero IV."""
    if len(uid) != 7 or len(padding) != 5:
        raise ValueError("SUN needs a 7-byte UID and 5 bytes of padding")
    plain = bytes([_PICC_TAG_UID_AND_COUNTER]) + uid + counter.to_bytes(3, "little") + padding
    return _cbc_encrypt(meta_key, bytes(16), plain)


def session_mac_key(file_key: bytes, uid: bytes, counter: int) -> bytes:
    return _cmac(file_key, _session_vector(_SV2_PREFIX, uid, counter))


def session_enc_key(file_key: bytes, uid: bytes, counter: int) -> bytes:
    return _cmac(file_key, _session_vector(_SV1_PREFIX, uid, counter))


def truncate_mac(full: bytes) -> bytes:
    """The chip sends the odd-indexed bytes of the 16-byte CMAC."""
    return full[1::2]


def sdm_mac(file_key: bytes, uid: bytes, counter: int, mac_input: bytes) -> bytes:
    return truncate_mac(_cmac(session_mac_key(file_key, uid, counter), mac_input))


def encrypt_file_data(file_key: bytes, uid: bytes, counter: int, plain: bytes) -> bytes:
    """Mirrored file data: AES-CBC under the session key, IV = E(K, counter ‖ zeros)."""
    key = session_enc_key(file_key, uid, counter)
    block = counter.to_bytes(3, "little") + bytes(13)
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - one block, as the chip does
    iv = ecb.update(block) + ecb.finalize()
    return _cbc_encrypt(key, iv, plain)


@dataclass(frozen=True, slots=True)
class SunUrl:
    """A SUN URL as the tag mirrors it: ``BASE?picc_data=…[&enc=…]&cmac=…``."""

    url: str
    counter: int


def build_sun_url(
    base: str,
    *,
    uid: bytes,
    counter: int,
    meta_key: bytes,
    file_key: bytes,
    file_data: bytes | None = None,
    padding: bytes | None = None,
) -> SunUrl:
    """The URL for one read. With ``file_data`` (16 bytes) the MAC covers the ASCII from
    the encrypted data to ``&cmac=`` included; without, the MAC input is empty."""
    if not 0 <= counter < COUNTER_LIMIT:
        raise ValueError("SDM read counter is 24 bits")
    picc = encrypt_picc_data(meta_key, uid, counter, padding or os.urandom(5)).hex().upper()
    url = f"{base}?picc_data={picc}"
    mac_input = b""
    if file_data is not None:
        enc = encrypt_file_data(file_key, uid, counter, file_data).hex().upper()
        mac_input = f"{enc}&cmac=".encode("ascii")
        url += f"&enc={enc}"
    mac = sdm_mac(file_key, uid, counter, mac_input).hex().upper()
    return SunUrl(url=f"{url}&cmac={mac}", counter=counter)
