"""The AES secure messaging of NTAG 424 DNA (NXP NT4H2421Gx datasheet §9.1, AN12196 §4–5):
session keys from AuthenticateEV2First, command IVs, truncated CMACs, ISO 9797-1 padding
method 2, and the CRC32 that ChangeKey puts after a key XORed with the old one.

Checked byte for byte against AN12196's worked examples (tests/hardware/test_ntag424.py).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from hardware.errors import CardProtocolError

_LABEL_CMD_IV, _LABEL_RESP_IV = b"\xa5\x5a", b"\x5a\xa5"
_SV_ENC, _SV_MAC = b"\xa5\x5a", b"\x5a\xa5"
_SV_TAIL = b"\x00\x01\x00\x80"


def cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def truncated(full_mac: bytes) -> bytes:
    """The 8 bytes the chip sends: the odd-indexed bytes of the 16-byte CMAC."""
    return full_mac[1::2]


def cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def pad(data: bytes) -> bytes:
    """ISO/IEC 9797-1 method 2: 80 then zeros, always at least one byte."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % 16)


def unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80") or len(data) - len(stripped) > 15:
        raise CardProtocolError("NTAG 424: encrypted answer with bad padding")
    return stripped[:-1]


def rotate_left(data: bytes) -> bytes:
    return data[1:] + data[:1]


def crc32_nk(data: bytes) -> bytes:
    """ChangeKey's CRC32: IEEE 802.3 CRC-32 without the final inversion, little-endian."""
    return (binascii.crc32(data) ^ 0xFFFFFFFF).to_bytes(4, "little")


def session_keys(key: bytes, rnd_a: bytes, rnd_b: bytes) -> tuple[bytes, bytes]:
    """(SesAuthENCKey, SesAuthMACKey) from the two random numbers (datasheet §9.1.7)."""
    mixed = rnd_a[:2] + bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[:6], strict=True))
    context = mixed + rnd_b[6:] + rnd_a[8:]
    return cmac(key, _SV_ENC + _SV_TAIL + context), cmac(key, _SV_MAC + _SV_TAIL + context)


@dataclass
class SecureChannel:
    """One authenticated session: its keys, transaction identifier and command counter."""

    key_no: int
    enc_key: bytes
    mac_key: bytes
    ti: bytes
    counter: int = 0

    def _iv(self, label: bytes, counter: int) -> bytes:
        block = label + self.ti + counter.to_bytes(2, "little") + bytes(8)
        return cbc_encrypt(self.enc_key, bytes(16), block)

    def command_mac(self, ins: int, header: bytes, data: bytes) -> bytes:
        body = bytes([ins]) + self.counter.to_bytes(2, "little") + self.ti + header + data
        return truncated(cmac(self.mac_key, body))

    def encrypt_command(self, data: bytes) -> bytes:
        return cbc_encrypt(self.enc_key, self._iv(_LABEL_CMD_IV, self.counter), pad(data))

    def response_mac(self, status: int, data: bytes) -> bytes:
        """The MAC of an answer; the counter has already moved on for it."""
        body = bytes([status]) + self.counter.to_bytes(2, "little") + self.ti + data
        return truncated(cmac(self.mac_key, body))

    def decrypt_response(self, data: bytes) -> bytes:
        if len(data) % 16:
            raise CardProtocolError("NTAG 424: encrypted answer is not whole blocks")
        return unpad(cbc_decrypt(self.enc_key, self._iv(_LABEL_RESP_IV, self.counter), data))
