"""What a genuine NTAG 424 DNA mirrors on a read, written from the datasheet (AN12196)
rather than from cardpay.sun, so the two check each other."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from cardpay.sun import SunMessage


def _cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def card_tap(meta_key: bytes, file_key: bytes, uid: bytes, counter: int) -> SunMessage:
    ctr = counter.to_bytes(3, "little")
    encryptor = Cipher(algorithms.AES(meta_key), modes.CBC(bytes(16))).encryptor()
    picc = encryptor.update(b"\xc7" + uid + ctr + bytes(5)) + encryptor.finalize()
    session_key = _cmac(file_key, bytes.fromhex("3CC300010080") + uid + ctr)
    return SunMessage(picc_data=picc, cmac=_cmac(session_key, b"")[1::2])
