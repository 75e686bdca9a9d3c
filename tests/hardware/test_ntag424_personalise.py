"""Personalising a blank NTAG 424 DNA mock in process (no pcscd): the result verifies as
genuine, a card with unknown keys costs at most one failed authentication, and lifting
the card between any two commands, or losing any answer, leaves a card that the next
attempt finishes."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import pytest

from cardpay.card_keys import KeyVersions
from cardpay.sun import Keyring, SunMessage
from firmware_mocks.apdu import ApduSession
from firmware_mocks.cards import CardState, Kind
from firmware_mocks.ntag424_chip import Chip
from hardware.errors import CardRemoved
from hardware.readers.ntag424 import Ntag424
from hardware.readers.ntag424_files import SunTemplate
from hardware.readers.ntag424_personalise import (
    KeysFor,
    Outcome,
    UnknownKeys,
    personalise,
    read_sun_url,
    read_versions,
    reset_to_factory,
)

MASTER = bytes(range(16))
UID = bytes.fromhex("04A1B2C3D4E5F6")
TEMPLATE = SunTemplate.for_base("https://moulin.example/sun")


class Reader:
    """The mock on a reader; lifts the card before command ``lift_at`` reaches it, or
    after the chip ran it but before its answer came back (``lose_answer``)."""

    def __init__(self, chip: Chip, lift_at: int | None = None, *, lose_answer: bool = False):
        self.session = ApduSession(CardState(Kind.NTAG424_DNA, chip.uid, chip=chip))
        self.sent, self.lift_at, self.lose_answer = 0, lift_at, lose_answer

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        if self.sent == self.lift_at and not self.lose_answer:
            raise CardRemoved("lifted")
        self.sent += 1
        answer = self.session.respond(apdu)
        if self.sent - 1 == self.lift_at:
            raise CardRemoved("lifted before the answer")
        return answer[:-2], int.from_bytes(answer[-2:], "big")


def keys_for(versions: KeyVersions, highest: int = 3) -> KeysFor:
    def lookup(version: int) -> Sequence[bytes] | None:
        return versions.keys(UID, version).keys if version <= highest else None

    return lookup


def _personalise(chip: Chip, version: int = 1, **reader: Any) -> Outcome:
    return personalise(Ntag424(Reader(chip, **reader)), UID,
                       keys_for=keys_for(KeyVersions(MASTER)), version=version, template=TEMPLATE)


def _genuine(chip: Chip, version: int) -> int:
    url = read_sun_url(Ntag424(Reader(chip)))
    assert url is not None
    tap = Keyring(MASTER, newest=3).verify(SunMessage.from_url(url), version_of=lambda u: version)
    assert tap.uid == UID
    return tap.counter


def test_a_blank_card_is_personalised_with_five_new_keys_and_taps_as_genuine() -> None:
    chip = Chip(uid=UID)
    outcome = _personalise(chip)
    assert outcome.found == [0] * 5
    assert chip.versions == [1] * 5
    assert chip.keys == list(KeyVersions(MASTER).keys(UID, 1).keys)
    assert outcome.sun_url is not None
    assert Keyring(MASTER).verify(SunMessage.from_url(outcome.sun_url)).counter == 1
    assert _genuine(chip, 1) == 2
    assert chip.failed_authentications == 0


def test_a_card_personalised_again_gets_new_keys_and_its_counter_restarts() -> None:
    chip = Chip(uid=UID)
    _personalise(chip)
    for _ in range(3):
        _genuine(chip, 1)
    _personalise(chip, version=2)
    assert chip.versions == [2] * 5
    assert _genuine(chip, 2) == 2  # 1 was the check during personalising


def test_unknown_versions_are_refused_without_authenticating() -> None:
    chip = Chip(uid=UID, keys=[b"\x42" * 16] * 5, versions=[9] * 5)
    with pytest.raises(UnknownKeys, match="version 9"):
        _personalise(chip)
    assert chip.failed_authentications == 0
    assert chip.keys == [b"\x42" * 16] * 5


def test_a_known_version_with_foreign_keys_costs_one_failed_authentication() -> None:
    chip = Chip(uid=UID, keys=[b"\x42" * 16] * 5, versions=[1] * 5)
    with pytest.raises(UnknownKeys, match="another master key"):
        _personalise(chip)
    with pytest.raises(UnknownKeys):
        _personalise(chip)
    assert chip.failed_authentications == 2  # one per attempt, never more
    assert chip.keys == [b"\x42" * 16] * 5


def _commands_of_a_full_run() -> int:
    reader = Reader(Chip(uid=UID))
    personalise(Ntag424(reader), UID, keys_for=keys_for(KeyVersions(MASTER)), version=1,
                template=TEMPLATE)
    return reader.sent


@pytest.mark.parametrize("lose_answer", [False, True], ids=["lifted", "answer-lost"])
@pytest.mark.parametrize("start", [0, 1], ids=["blank", "again"])
def test_lifting_the_card_at_any_command_leaves_a_card_the_next_attempt_finishes(
    lose_answer: bool, start: int
) -> None:
    total = _commands_of_a_full_run()
    assert total > 15
    for lift_at in range(total):
        chip = Chip(uid=UID)
        if start:
            _personalise(chip, version=1)
        with pytest.raises(CardRemoved):
            _personalise(chip, version=start + 1, lift_at=lift_at, lose_answer=lose_answer)
        # Whatever happened, each key's version names the key it holds.
        versions = read_versions(Ntag424(Reader(chip)))
        for key_no, version in enumerate(versions):
            assert chip.keys[key_no] == KeyVersions(MASTER).keys(UID, version).keys[key_no]
        outcome = _personalise(chip, version=start + 1)
        assert chip.versions == [start + 1] * 5, lift_at
        assert outcome.sun_url is not None
        _genuine(chip, start + 1)
        assert chip.failed_authentications == 0


def test_giving_a_card_back_returns_it_to_factory_keys() -> None:
    chip = Chip(uid=UID)
    _personalise(chip)
    reset_to_factory(Ntag424(Reader(chip)), UID, keys_for=keys_for(KeyVersions(MASTER)))
    assert chip.keys == [bytes(16)] * 5
    assert chip.versions == [0] * 5
    assert chip.files[2].sdm is None
    assert read_sun_url(Ntag424(Reader(chip))) is None


def test_giving_back_survives_a_lift_at_any_command() -> None:
    for lift_at in range(25):
        chip = Chip(uid=UID)
        _personalise(chip)
        lookup = keys_for(KeyVersions(MASTER))
        with contextlib.suppress(CardRemoved):
            reset_to_factory(Ntag424(Reader(chip, lift_at)), UID, keys_for=lookup)
        reset_to_factory(Ntag424(Reader(chip)), UID, keys_for=lookup)
        assert chip.versions == [0] * 5
        assert chip.keys == [bytes(16)] * 5
