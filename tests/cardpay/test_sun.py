"""NTAG 424 DNA SUN verification against NXP's AN12196 vectors, and what it refuses."""

from __future__ import annotations

import pytest

from cardpay import sun
from cardpay.errors import SunForgedError, SunMalformedError
from cardpay.sun import Keyring, PiccData, SunMessage
from tests.cardpay.cardsim import card_tap

ZERO = bytes(16)
H = bytes.fromhex

# AN12196, PICCData and CMAC only (no encrypted file data): all keys zero.
V1 = SunMessage(picc_data=H("EF963FF7828658A599F3041510671E88"), cmac=H("94EED9EE65337086"))
# AN12196, with mirrored encrypted file data: the CMAC covers '<enc>&cmac='.
V2_URL = ("https://example.org/?picc_data=FD91EC264309878BE6345CBE53BADF40"
          "&enc=CEE9A53E3E463EF1F459635736738962&cmac=ECC1E7F6C6C73BF6")


def _zero_keys(message: SunMessage) -> sun.VerifiedTap:
    return sun.verify(message, meta_key=ZERO, file_key_for=lambda uid: ZERO)


def test_vector_without_file_data() -> None:
    picc = sun.decrypt_picc_data(ZERO, V1.picc_data)
    assert picc == PiccData(uid=H("04DE5F1EACC040"), counter=61)
    assert sun.session_mac_key(ZERO, picc) == H("3FB5F6E3A807A03D5E3570ACE393776F")
    assert sun.sun_mac(ZERO, picc) == H("94EED9EE65337086")
    assert _zero_keys(V1) == sun.VerifiedTap(H("04DE5F1EACC040"), 61, None)


def test_vector_with_encrypted_file_data() -> None:
    message = SunMessage.from_url(V2_URL)
    assert message.mac_input == b"CEE9A53E3E463EF1F459635736738962&cmac="
    picc = sun.decrypt_picc_data(ZERO, message.picc_data)
    assert picc == PiccData(uid=H("04958CAA5C5E80"), counter=8)
    assert sun.session_mac_key(ZERO, picc) == H("3ED0920E5E6A0320D823D5987FEAFBB1")
    enc_key = sun.session_enc_key(ZERO, picc)
    assert enc_key == H("42132D669442AD43E072C8C0C9828A72")
    assert sun.file_data_iv(enc_key, picc) == H("0AD3EB2717A58332CBC8899BBECBD411")
    tap = _zero_keys(message)
    assert (tap.uid, tap.counter) == (H("04958CAA5C5E80"), 8)
    assert tap.file_data == b"x" * 16  # AN12196's example file content


def _flips(data: bytes) -> list[bytes]:
    return [data[:i // 8] + bytes([data[i // 8] ^ (1 << (i % 8))]) + data[i // 8 + 1:]
            for i in range(len(data) * 8)]


def test_any_single_bit_flipped_in_the_cmac_is_refused() -> None:
    for cmac in _flips(V1.cmac):
        with pytest.raises(SunForgedError):
            _zero_keys(SunMessage(V1.picc_data, cmac))


def test_any_single_bit_flipped_in_the_picc_data_is_refused() -> None:
    for picc in _flips(V1.picc_data):
        # Most flips garble the header byte; the rest change UID or counter, and the CMAC.
        with pytest.raises((SunForgedError, SunMalformedError)):
            _zero_keys(SunMessage(picc, V1.cmac))


def test_flipped_file_data_and_its_mac_input_are_refused() -> None:
    message = SunMessage.from_url(V2_URL)
    forged = V2_URL.replace("enc=CEE9", "enc=CEE8")
    with pytest.raises(SunForgedError):
        _zero_keys(SunMessage.from_url(forged))
    with pytest.raises(SunForgedError):
        _zero_keys(SunMessage(message.picc_data, message.cmac, message.enc_file_data,
                              mac_input=b""))


def test_a_wrong_key_is_refused() -> None:
    other = bytes(15) + b"\x01"
    with pytest.raises(SunMalformedError):
        sun.verify(V1, meta_key=other, file_key_for=lambda uid: ZERO)
    with pytest.raises(SunForgedError):
        sun.verify(V1, meta_key=ZERO, file_key_for=lambda uid: other)


@pytest.mark.parametrize("url", [
    "https://example.org/?picc_data=EF963FF7828658A599F3041510671E88",
    "https://example.org/?picc_data=nothex&cmac=94EED9EE65337086",
    "https://example.org/?picc_data=EF96&cmac=94EED9EE65337086",
    "https://example.org/?picc_data=EF963FF7828658A599F3041510671E88&cmac=94EE",
    "https://example.org/?picc_data=EF963FF7828658A599F3041510671E88&enc=CE&cmac=94EED9EE65337086",
])
def test_malformed_messages_are_refused(url: str) -> None:
    with pytest.raises(SunMalformedError):
        _zero_keys(SunMessage.from_url(url))


def test_keyring_derives_per_card_keys_that_verify() -> None:
    keys = Keyring(b"m" * 32)
    uid_a, uid_b = H("04A1B2C3D4E5F6"), H("04A1B2C3D4E5F7")
    assert keys.file_read(uid_a) != keys.file_read(uid_b)
    assert len({keys.meta_read, keys.file_read(uid_a), keys.app_master(uid_a)}) == 3
    assert Keyring(b"m" * 32).file_read(uid_a) == keys.file_read(uid_a)
    assert Keyring(b"n" * 32).file_read(uid_a) != keys.file_read(uid_a)
    tap = card_tap(keys.meta_read, keys.file_read(uid_a), uid_a, 42)
    assert keys.verify(tap) == sun.VerifiedTap(uid_a, 42, None)
    # A card that carries card B's key but claims card A's UID is refused.
    with pytest.raises(SunForgedError):
        keys.verify(card_tap(keys.meta_read, keys.file_read(uid_b), uid_a, 43))


def test_a_short_master_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Keyring(b"short")
