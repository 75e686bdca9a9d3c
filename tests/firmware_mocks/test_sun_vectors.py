"""The virtual card's SUN generator reproduces NXP's AN12196 test vectors (all keys zero)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from firmware_mocks import sun

ZERO = bytes(16)
UID_1 = bytes.fromhex("04DE5F1EACC040")
UID_2 = bytes.fromhex("04958CAA5C5E80")
# The 5 random padding bytes the chip used in each vector (read by decrypting it).
PAD_1 = bytes.fromhex("DA5CF60941")
PAD_2 = bytes.fromhex("A243C86DFC")


def test_picc_data_of_the_first_vector() -> None:
    picc = sun.encrypt_picc_data(ZERO, UID_1, 61, PAD_1)
    assert picc.hex().upper() == "EF963FF7828658A599F3041510671E88"


def test_session_mac_key_and_mac_of_the_first_vector() -> None:
    assert sun.session_mac_key(ZERO, UID_1, 61).hex().upper() == "3FB5F6E3A807A03D5E3570ACE393776F"
    assert sun.sdm_mac(ZERO, UID_1, 61, b"").hex().upper() == "94EED9EE65337086"


def test_second_vector_with_encrypted_file_data() -> None:
    assert sun.encrypt_picc_data(ZERO, UID_2, 8, PAD_2).hex().upper() == (
        "FD91EC264309878BE6345CBE53BADF40"
    )
    assert sun.session_enc_key(ZERO, UID_2, 8).hex().upper() == "42132D669442AD43E072C8C0C9828A72"
    enc = sun.encrypt_file_data(ZERO, UID_2, 8, b"x" * 16)
    assert enc.hex().upper() == "CEE9A53E3E463EF1F459635736738962"
    assert sun.session_mac_key(ZERO, UID_2, 8).hex().upper() == "3ED0920E5E6A0320D823D5987FEAFBB1"
    mac_input = b"CEE9A53E3E463EF1F459635736738962&cmac="
    assert sun.sdm_mac(ZERO, UID_2, 8, mac_input).hex().upper() == "ECC1E7F6C6C73BF6"


def test_whole_url_of_the_second_vector() -> None:
    built = sun.build_sun_url(
        "https://t.example/s",
        uid=UID_2,
        counter=8,
        meta_key=ZERO,
        file_key=ZERO,
        file_data=b"x" * 16,
        padding=PAD_2,
    )
    query = parse_qs(urlsplit(built.url).query)
    assert query == {
        "picc_data": ["FD91EC264309878BE6345CBE53BADF40"],
        "enc": ["CEE9A53E3E463EF1F459635736738962"],
        "cmac": ["ECC1E7F6C6C73BF6"],
    }


def test_counter_is_24_bits() -> None:
    with pytest.raises(ValueError, match="24 bits"):
        sun.build_sun_url(
            "https://t.example/s", uid=UID_1, counter=1 << 24, meta_key=ZERO, file_key=ZERO
        )
