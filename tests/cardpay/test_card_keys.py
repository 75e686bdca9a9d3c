"""Card keys by key version: v1 is the scheme shipped first, later versions follow NXP
AN10922; a new master key serves new versions while old cards keep verifying."""

from __future__ import annotations

import pytest

from cardpay.card_keys import KeyVersions, an10922_key, factory_keys
from cardpay.errors import SunForgedError, SunMalformedError
from cardpay.sun import Keyring, SunMessage
from firmware_mocks.sun import build_sun_url

MASTER, NEWER = bytes(range(16)), bytes(range(16, 32))
UID = bytes.fromhex("04A1B2C3D4E5F6")


def test_an10922_aes128_example() -> None:
    # AN10922 §2.2.1: UID 04782E21801D80, AID 3042F5, system identifier "NXP Abu".
    key = an10922_key(bytes.fromhex("00112233445566778899AABBCCDDEEFF"),
                      bytes.fromhex("04782E21801D803042F54E585020416275"))
    assert key == bytes.fromhex("A8DD63A3B89D54B37CA802473FDA9175")


def test_version_1_is_the_first_scheme() -> None:
    keyring = Keyring(MASTER)
    v1 = keyring.card_keys(UID, 1)
    assert v1.meta_read == keyring.meta_read
    assert v1.file_read == keyring.file_read(UID)
    assert v1.app_master == keyring.app_master(UID)
    assert len(set(v1.keys)) == 5


def test_each_version_has_its_own_keys_and_zero_is_the_factory() -> None:
    versions = KeyVersions(MASTER)
    assert versions.keys(UID, 0) == factory_keys()
    v2, v3 = versions.keys(UID, 2), versions.keys(UID, 3)
    assert v2.file_read != v3.file_read
    assert v2.app_master != versions.keys(UID, 1).app_master
    assert v2.meta_read == v3.meta_read  # one meta read key per master
    assert "keys" not in repr(v2)
    assert v2.app_master.hex() not in repr(v2)


def test_a_new_master_serves_later_versions_only() -> None:
    versions = KeyVersions(MASTER, {5: NEWER})
    assert versions.master_for(4) == MASTER
    assert versions.master_for(5) == NEWER
    assert versions.next_version(None) == 5
    assert versions.next_version(7) == 8


def _message(keys_version: int, keyring: Keyring, counter: int) -> SunMessage:
    keys = keyring.card_keys(UID, keys_version)
    url = build_sun_url("https://m.example/s", uid=UID, counter=counter,
                        meta_key=keys.meta_read, file_key=keys.file_read).url
    return SunMessage.from_url(url)


def test_verify_uses_the_card_s_version_and_refuses_an_older_one() -> None:
    keyring = Keyring(MASTER, later={5: NEWER})
    old, new = _message(1, keyring, 9), _message(5, keyring, 1)
    assert keyring.verify(new, version_of=lambda uid: 5).key_version == 5
    assert keyring.verify(old, version_of=lambda uid: 1).key_version == 1
    with pytest.raises(SunForgedError):  # the card was personalised again: v1 is over
        keyring.verify(old, version_of=lambda uid: 5)


def test_without_a_version_the_versions_up_to_newest_are_tried() -> None:
    keyring = Keyring(MASTER, newest=3)
    assert keyring.verify(_message(3, keyring, 2)).key_version == 3
    assert keyring.verify(_message(1, keyring, 2)).key_version == 1
    assert Keyring(MASTER).verify(_message(7, keyring, 2)).key_version == 7
    with pytest.raises((SunForgedError, SunMalformedError)):  # v2 unknown to this one
        Keyring(MASTER, newest=1).verify(_message(2, keyring, 2))
    with pytest.raises(SunForgedError):  # beyond the versions tried without the database
        Keyring(MASTER).verify(_message(40, keyring, 2))
    assert Keyring(MASTER).verify(_message(40, keyring, 2), version_of=lambda u: 40).counter == 2
