"""The blank NTAG 424 DNA mock against NXP AN12196's worked examples (the card's side of
each exchange), and the chip's rules: failed-authentication counter, refusals, the SDM
read counter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from firmware_mocks.ntag424_chip import Chip, ChipSession, _Auth

h = bytes.fromhex
SELECT_APP = h("00A4040007D276000085010100")


def _randoms(*values: str) -> Iterator[bytes]:
    return iter(h(v) for v in values)


def _session(chip: Chip) -> ChipSession:
    session = chip.session()
    assert session.respond(SELECT_APP) == h("9000")
    return session


def test_authenticate_ev2_first_card_side_section_6_6() -> None:
    randoms = _randoms("B9E2FC789B64BF237CCCAA20EC7E6E48", "9D00C4DF")
    chip = Chip(uid=h("04958CAA5C5E80"), random=lambda n: next(randoms))
    session = _session(chip)
    assert session.respond(h("9071000002000000")) == h("A04C124213C186F22399D33AC2A3021591AF")
    answer = session.respond(h("90AF00002035C3E05A752E0144BAC0DE51C1F22C56B34408A23D8AEA266CAB"
                               "947EA8E0118D00"))
    assert answer == h("3FA64DB5446D1F34CD6EA311167F5E4985B89690C04A05F17FA7AB2F081206639100")
    assert session.auth is not None
    assert session.auth.enc == h("1309C877509E5A215007FF0ED19CA564")
    assert session.auth.mac == h("4C6626F5E72EA694202139295C7A7FC7")


def _authenticated(chip: Chip, ti: str, enc: str, mac: str, counter: int) -> ChipSession:
    session = _session(chip)
    session.auth = _Auth(0, h(enc), h(mac), h(ti), counter)
    return session


def test_change_file_settings_card_side_section_5_9() -> None:
    chip = Chip(uid=h("04958CAA5C5E80"))
    chip.sdm_counter = 41
    session = _authenticated(chip, "9D00C4DF", "1309C877509E5A215007FF0ED19CA564",
                             "4C6626F5E72EA694202139295C7A7FC7", 1)
    answer = session.respond(h("905F0000190261B6D97903566E84C3AE5274467E89EAD799B7C1A0EF7A0400"))
    assert answer == h("57BFF87B1241E93D9100")
    assert chip.files[2].settings()[7:] == h("C1F121200000430000430000")
    assert chip.sdm_counter == 0  # switching SDM on restarts the read counter


def test_change_key_2_then_key_0_card_side_tables_25_26() -> None:
    chip = Chip(uid=h("04958CAA5C5E80"))
    session = _authenticated(chip, "7614281A", "4CF3CB41A22583A61E89B158D252FC53",
                             "5529860B2FC5FB6154B7F28361D30BF9", 2)
    answer = session.respond(h("90C4000029022CF362B7BF4311FF3BE1DAA295E8C68DE09050560D19B9E16C"
                               "2393AE9CD1FAC75D0CE20BCD1D06E600"))
    assert answer == h("203BB55D1089D5879100")
    assert chip.keys[2] == h("F3847D627727ED3BC9C4CC050489B966")
    assert chip.versions[2] == 1
    answer = session.respond(h("90C400002900C0EB4DEEFEDDF0B513A03A95A75491818580503190D4D050"
                               "53FF75668A01D6FDA6610234BDED643200"))
    assert answer == h("9100")
    assert chip.keys[0] == h("5004BF991F408672B1EF00F08F9E8647")
    assert session.auth is None  # key 0 changed: its session is over


def test_get_card_uid_card_side_table_28() -> None:
    chip = Chip(uid=h("04958CAA5C5E80"))
    session = _authenticated(chip, "DF055522", "2B4D963C014DC36F24F69A50A394F875",
                             "379D32130CE61705DD5FD8C36B95D764", 0)
    answer = session.respond(h("90510000088E2C155ADDA99BE300"))
    assert answer == h("70756055688505B52A5E26E59E329CD6595F672298EA41B79100")


def test_a_wrong_key_counts_a_failure_and_a_success_takes_ten_off() -> None:
    chip = Chip(uid=h("04958CAA5C5E80"))
    chip.fail_counter = 15
    session = _session(chip)
    assert session.respond(h("9071000002000000"))[-2:] == h("91AF")
    assert session.respond(h("90AF000020") + bytes(32) + b"\x00") == h("91AE")
    assert (chip.fail_counter, chip.failed_authentications) == (16, 1)


def test_at_the_failure_limit_no_key_opens_the_card() -> None:
    chip = Chip(uid=h("04958CAA5C5E80"), fail_limit=3)
    chip.fail_counter = 3
    assert _session(chip).respond(h("9071000002000000")) == h("91AE")


@pytest.mark.parametrize(
    ("apdu", "status"),
    [
        ("9071000002000000" + "00", "917E"),  # Lc says 2, three bytes follow
        ("905F0000030200E0" + "00", "919D"),  # ChangeFileSettings without a session
        ("90C4000002" + "0000" + "00", "919D"),  # ChangeKey without a session
        ("9064000001" + "07" + "00", "9140"),  # no key 7
    ],
)
def test_refuses_what_the_chip_refuses(apdu: str, status: str) -> None:
    assert _session(Chip(uid=h("04958CAA5C5E80"))).respond(h(apdu)) == h(status)


def test_a_command_in_the_wrong_comm_mode_is_refused_and_ends_the_session() -> None:
    chip = Chip(uid=h("04958CAA5C5E80"))
    session = _authenticated(chip, "9D00C4DF", "1309C877509E5A215007FF0ED19CA564",
                             "4C6626F5E72EA694202139295C7A7FC7", 1)
    # ChangeFileSettings sent plain: no room for the MAC the chip expects.
    assert session.respond(h("905F0000040200E0EE00")) == h("917E")
    assert session.auth is None


def test_a_blank_card_has_factory_keys_and_no_sdm() -> None:
    chip = Chip(uid=h("04958CAA5C5E80"))
    session = _session(chip)
    assert session.respond(h("90640000010000")) == h("009100")
    assert session.respond(h("90F50000010200")) == h("0000E0EE0001009100")
    assert chip.keys == [bytes(16)] * 5
