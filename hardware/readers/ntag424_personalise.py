"""Personalising an NTAG 424 DNA, and giving it back its factory keys, in steps that are
each safe to interrupt: the card can leave the reader between any two commands.

Why it is safe. The chip keeps a version byte beside each of its five keys and changes
key and version together (a ChangeKey is all or nothing). The steps read the five
versions first, without authenticating, and derive from each the key it stands for
(0 = factory zeros); so a card that left half-way tells the next attempt exactly which
keys it holds, and that attempt does what is left. Key 0, the one that authenticates,
changes last. Writing the URL template and the SDM settings are repeated every time:
doing them twice is harmless.

Never blindly. Only the key 0 that the card's version byte names is tried, once. A
version nobody knows is refused before any authentication; a known version whose key
the card refuses (91AE, one failure on the chip's counter) is refused at once.

The keys come from the caller (``keys_for``: version → keys 0-4, or None): this package
knows no master key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hardware.errors import CardProtocolError
from hardware.readers.ndef import first_uri
from hardware.readers.ntag424 import (
    KEY_COUNT,
    NDEF_FILE_NO,
    AuthenticationFailed,
    Ntag424,
)
from hardware.readers.ntag424_files import COMM_PLAIN, FREE, FileSettings, SunTemplate
from hardware.readers.pcsc import read_ndef

logger = logging.getLogger(__name__)

KeysFor = Callable[[int], Sequence[bytes] | None]
META_READ_KEY, FILE_READ_KEY = 1, 2
FACTORY_SETTINGS = FileSettings(comm_mode=COMM_PLAIN, read_write=FREE, change=0, read=FREE,
                                write=FREE)


class UnknownKeys(CardProtocolError):
    """The card holds keys of no version we know: it is left alone."""


@dataclass
class Outcome:
    """What one run did: the versions found, the steps taken, the SUN URL read after."""

    uid: bytes
    version: int
    found: list[int]
    steps: list[str] = field(default_factory=list)
    sun_url: str | None = None


def read_versions(card: Ntag424) -> list[int]:
    card.select_application()
    return [card.get_key_version(n) for n in range(KEY_COUNT)]


def _known(found: list[int], keys_for: KeysFor) -> list[Sequence[bytes]]:
    current = []
    for key_no, version in enumerate(found):
        keys = keys_for(version)
        if keys is None:
            raise UnknownKeys(
                f"key {key_no} of this card has version {version}, which no key set here "
                "matches: it was personalised elsewhere; left untouched"
            )
        current.append(keys)
    return current


def _open(card: Ntag424, uid: bytes, found: list[int], current: list[Sequence[bytes]]) -> None:
    """Authenticate with the key 0 the version names: one try, never another key."""
    try:
        card.authenticate(0, current[0][0])
    except AuthenticationFailed as exc:
        raise UnknownKeys(
            f"key 0 of this card (version {found[0]}) is not the one Moulin derives: "
            "personalised elsewhere with another master key; left untouched"
        ) from exc
    if card.get_card_uid() != uid:
        raise CardProtocolError("the card's UID behind authentication differs from its UID")


def _change_keys(card: Ntag424, found: list[int], current: list[Sequence[bytes]],
                 target: Sequence[bytes], version: int, steps: list[str]) -> None:
    for key_no in (*range(1, KEY_COUNT), 0):  # key 0 last: it ends the session
        if found[key_no] == version and current[key_no][key_no] == target[key_no]:
            continue
        old = None if key_no == 0 else current[key_no][key_no]
        card.change_key(key_no, target[key_no], version, old_key=old)
        steps.append(f"key {key_no} → version {version}")


def personalise(card: Ntag424, uid: bytes, *, keys_for: KeysFor, version: int,
                template: SunTemplate) -> Outcome:
    """Bring the card to key ``version`` with SDM on: URL template, SDM settings, keys
    1-4, key 0; then read one SUN URL for the caller to check before linking the card."""
    found = read_versions(card)
    current, target = _known(found, keys_for), keys_for(version)
    if target is None:
        raise ValueError(f"no keys for version {version}")
    outcome = Outcome(uid=uid, version=version, found=found)
    _open(card, uid, found, current)
    card.write_data(NDEF_FILE_NO, template.file)
    outcome.steps.append("URL template written")
    if card.get_file_settings(NDEF_FILE_NO).sdm is not None:
        # Off, then on: the read counter restarts, whatever chip revision this is, so a
        # card personalised again starts its new key version from 0.
        card.change_file_settings(NDEF_FILE_NO, FACTORY_SETTINGS)
    settings = FileSettings(comm_mode=COMM_PLAIN, read_write=0, change=0, read=FREE, write=0,
                            sdm=template.sdm(meta_read=META_READ_KEY, file_read=FILE_READ_KEY))
    card.change_file_settings(NDEF_FILE_NO, settings)
    outcome.steps.append("SDM on")
    _change_keys(card, found, current, target, version, outcome.steps)
    outcome.sun_url = read_sun_url(card)
    return outcome


def read_sun_url(card: Ntag424) -> str | None:
    """One read of the NDEF file, as a till would read it (the chip counts it)."""
    card.channel = None
    message = read_ndef(card.link)
    return first_uri(message) if message else None


def reset_to_factory(card: Ntag424, uid: bytes, *, keys_for: KeysFor) -> Outcome:
    """Give the card back its factory state: SDM off, empty NDEF file, all keys zero at
    version 0 (key 0 last), so that it can be personalised again for anyone."""
    found = read_versions(card)
    current = _known(found, keys_for)
    outcome = Outcome(uid=uid, version=0, found=found)
    _open(card, uid, found, current)
    card.change_file_settings(NDEF_FILE_NO, FACTORY_SETTINGS)
    outcome.steps.append("SDM off")
    card.write_data(NDEF_FILE_NO, bytes(2))  # NLEN 0: no NDEF message
    outcome.steps.append("URL removed")
    _change_keys(card, found, current, (bytes(16),) * KEY_COUNT, 0, outcome.steps)
    return outcome
