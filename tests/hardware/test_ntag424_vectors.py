"""The NTAG 424 DNA command layer against NXP AN12196's worked examples: every byte of
the APDUs it builds and the answers it accepts is the application note's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hardware.errors import CardProtocolError
from hardware.readers.ntag424 import AuthenticationFailed, Ntag424
from hardware.readers.ntag424_crypto import SecureChannel, crc32_nk
from hardware.readers.ntag424_files import FREE, FileSettings, Sdm, SunTemplate

h = bytes.fromhex


class Script:
    """A link that expects exactly these APDUs and gives these answers."""

    def __init__(self, *exchanges: tuple[str, str]) -> None:
        self._exchanges: Iterator[tuple[str, str]] = iter(exchanges)
        self.left = len(exchanges)

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        expected, answer = next(self._exchanges)
        assert apdu.hex().upper() == expected.replace(" ", "")
        self.left -= 1
        raw = h(answer.replace(" ", ""))
        return raw[:-2], int.from_bytes(raw[-2:], "big")


def _chip(script: Script, channel: SecureChannel | None = None) -> Ntag424:
    chip = Ntag424(script)
    chip.channel = channel
    return chip


def test_authenticate_ev2_first_with_key_0_section_6_6() -> None:
    script = Script(
        ("9071000002000000", "A04C124213C186F22399D33AC2A30215 91AF"),
        ("90AF000020 35C3E05A752E0144BAC0DE51C1F22C56B34408A23D8AEA266CAB947EA8E0118D 00",
         "3FA64DB5446D1F34CD6EA311167F5E4985B89690C04A05F17FA7AB2F08120663 9100"),
    )
    chip = Ntag424(script, random=lambda n: h("13C5DB8A5930439FC3DEF9A4C675360F"))
    channel = chip.authenticate(0, bytes(16))
    assert channel.ti == h("9D00C4DF")
    assert channel.enc_key == h("1309C877509E5A215007FF0ED19CA564")
    assert channel.mac_key == h("4C6626F5E72EA694202139295C7A7FC7")
    assert channel.counter == 0
    assert script.left == 0


def test_authenticate_ev2_first_second_example_section_6_10() -> None:
    script = Script(
        ("9071000002000000", "B875CEB0E66A6C5CD00898DC371F92D1 91AF"),
        ("90AF000020 FF0306E47DFBC50087C4D8A78E88E62DE1E8BE457AA477C707E2F0874916A8B1 00",
         "0CC9A8094A8EEA683ECAAC5C7BF20584206D0608D477110FC6B3D5D3F65C3A6A 9100"),
    )
    chip = Ntag424(script, random=lambda n: h("B98F4C50CF1C2E084FD150E33992B048"))
    channel = chip.authenticate(0, bytes(16))
    assert channel.ti == h("7614281A")
    assert channel.enc_key == h("7A93D6571E4B180FCA6AC90C9A7488D4")
    assert channel.mac_key == h("FC4AF159B62E549B5812394CAB1918CC")


def test_a_wrong_key_is_refused_with_91ae() -> None:
    # The card's first answer is AN12196's; a PCD with another key answers RndB wrongly.
    script = Script(("9071000002000000", "A04C124213C186F22399D33AC2A30215 91AF"),
                    ("90AF000020" + _token_with(b"\x01" * 16) + "00", "91AE"))
    chip = Ntag424(script, random=lambda n: bytes(16))
    with pytest.raises(AuthenticationFailed, match="91AE"):
        chip.authenticate(0, b"\x01" * 16)
    assert chip.channel is None
    assert script.left == 0


def _token_with(key: bytes) -> str:
    from hardware.readers.ntag424_crypto import cbc_decrypt, cbc_encrypt, rotate_left

    rnd_b = cbc_decrypt(key, bytes(16), h("A04C124213C186F22399D33AC2A30215"))
    return cbc_encrypt(key, bytes(16), bytes(16) + rotate_left(rnd_b)).hex().upper()


def test_get_file_settings_in_mac_mode_section_5_3() -> None:
    channel = SecureChannel(0, bytes(16), h("8248134A386E86EB7FAF54A52E536CB6"), h("7A21085E"))
    script = Script(("90F5000009026597A457C8CD442C00",
                     "0040EEEE000100D1FE001F00004400004400002000006A0000"
                     "2A474282E7A47986 9100"))
    settings = _chip(script, channel).get_file_settings(2)
    assert (settings.comm_mode, settings.size) == (0, 256)
    assert (settings.read, settings.write) == (FREE, FREE)
    assert settings.sdm is not None
    assert (settings.sdm.meta_read, settings.sdm.file_read) == (0, 0)
    assert (settings.sdm.picc_offset, settings.sdm.mac_input_offset) == (0x1F, 0x44)
    assert settings.sdm.mac_offset == 0x6A
    assert channel.counter == 1


def test_write_data_in_full_mode_section_5_4() -> None:
    channel = SecureChannel(0, h("1309C877509E5A215007FF0ED19CA564"),
                            h("4C6626F5E72EA694202139295C7A7FC7"), h("9D00C4DF"))
    data = h("0051D1014D550463686F6F73652E75726C2E636F6D2F6E7461673432343F653D"
             "303030303030303030303030303030303030303030303030303030303030303026633D"
             "30303030303030303030303030303030").ljust(128, b"\0")
    assert len(data) == 128
    script = Script((
        "908D00009F02000000800000"
        "421C73A27D827658AF481FDFF20A5025B559D0E3AA21E58D347F343CFFC768BF"
        "E596C706BC00F2176781D4B0242642A0FF5A42C461AAF894D9A1284B8C76BCFA"
        "658ACD40555D362E08DB15CF421B51283F9064BCBE20E96CAE545B407C9D651A"
        "3315B27373772E5DA2367D2064AE054AF996C6F1F669170FA88CE8C4E3A4A7BB"
        "BEF0FD971FF532C3A802AF745660F2B4D1D9A8499661EBF300", "FC222E5F7A542452 9100"))
    chip = _chip(script, channel)
    header = h("02000000800000")
    assert chip._secure("WriteData", 0x8D, header, data, 3) == b""
    assert channel.counter == 1


def test_change_file_settings_enabling_sdm_section_5_9() -> None:
    channel = SecureChannel(0, h("1309C877509E5A215007FF0ED19CA564"),
                            h("4C6626F5E72EA694202139295C7A7FC7"), h("9D00C4DF"), counter=1)
    settings = FileSettings(comm_mode=0, read_write=0, change=0, read=FREE, write=0,
                            sdm=Sdm(meta_read=2, file_read=1, counter_ret=1, picc_offset=0x20,
                                    mac_input_offset=0x43, mac_offset=0x43))
    assert settings.encode() == h("4000E0C1F121200000430000430000")
    script = Script(("905F0000190261B6D97903566E84C3AE5274467E89EAD799B7C1A0EF7A0400",
                     "57BFF87B1241E93D 9100"))
    _chip(script, channel).change_file_settings(2, settings)
    assert channel.counter == 2
    assert script.left == 0


def test_an_answer_with_a_wrong_mac_is_refused() -> None:
    channel = SecureChannel(0, h("1309C877509E5A215007FF0ED19CA564"),
                            h("4C6626F5E72EA694202139295C7A7FC7"), h("9D00C4DF"), counter=1)
    settings = FileSettings.decode(h("0040 00E0 000100 C1F121200000430000430000"))
    assert settings.encode() == h("4000E0C1F121200000430000430000")
    script = Script(("905F0000190261B6D97903566E84C3AE5274467E89EAD799B7C1A0EF7A0400",
                     "57BFF87B1241E93E 9100"))
    chip = _chip(script, channel)
    with pytest.raises(CardProtocolError, match="MAC is wrong"):
        chip.change_file_settings(2, settings)
    assert chip.channel is None


def test_plain_write_data_inside_a_session_table_24() -> None:
    channel = SecureChannel(0, h("4CF3CB41A22583A61E89B158D252FC53"),
                            h("5529860B2FC5FB6154B7F28361D30BF9"), h("7614281A"), counter=1)
    script = Script(("908D000019010E0000120000FF0506E10500808283000000000000000000 00",
                     "9100"))
    _chip(script, channel).write_data(1, h("FF0506E10500808283000000000000000000"), 0x0E)
    assert channel.counter == 2


def test_change_key_2_with_the_old_key_and_crc_table_25() -> None:
    assert crc32_nk(h("F3847D627727ED3BC9C4CC050489B966")) == h("789DFADC")
    channel = SecureChannel(0, h("4CF3CB41A22583A61E89B158D252FC53"),
                            h("5529860B2FC5FB6154B7F28361D30BF9"), h("7614281A"), counter=2)
    script = Script(("90C400002902 2CF362B7BF4311FF3BE1DAA295E8C68DE09050560D19B9E16C2393AE"
                     "9CD1FAC7 5D0CE20BCD1D06E6 00", "203BB55D1089D587 9100"))
    chip = _chip(script, channel)
    chip.change_key(2, h("F3847D627727ED3BC9C4CC050489B966"), 1, old_key=bytes(16))
    assert channel.counter == 3
    assert chip.channel is channel


def test_change_key_0_ends_the_session_table_26() -> None:
    channel = SecureChannel(0, h("4CF3CB41A22583A61E89B158D252FC53"),
                            h("5529860B2FC5FB6154B7F28361D30BF9"), h("7614281A"), counter=3)
    script = Script(("90C400002900 C0EB4DEEFEDDF0B513A03A95A75491818580503190D4D05053FF7566"
                     "8A01D6FD A6610234BDED6432 00", "9100"))
    chip = _chip(script, channel)
    chip.change_key(0, h("5004BF991F408672B1EF00F08F9E8647"), 1)
    assert chip.channel is None


def test_get_card_uid_in_full_mode_table_28() -> None:
    channel = SecureChannel(0, h("2B4D963C014DC36F24F69A50A394F875"),
                            h("379D32130CE61705DD5FD8C36B95D764"), h("DF055522"))
    script = Script(("90510000088E2C155ADDA99BE300",
                     "70756055688505B52A5E26E59E329CD6595F672298EA41B7 9100"))
    assert _chip(script, channel).get_card_uid() == h("04958CAA5C5E80")


def test_the_url_template_puts_the_mirrors_where_the_settings_say() -> None:
    template = SunTemplate.for_base("https://moulin.example/sun")
    file = template.file
    assert file[template.picc_offset : template.picc_offset + 32] == b"0" * 32
    assert file[template.mac_offset : template.mac_offset + 16] == b"0" * 16
    assert file[template.picc_offset - 10 : template.picc_offset] == b"picc_data="
    sdm = template.sdm(meta_read=2, file_read=1)
    decoded = FileSettings.decode(b"\x00" + FileSettings(
        comm_mode=0, read=FREE, write=0, read_write=0, change=0, sdm=sdm).encode()[:3]
        + h("000100") + sdm.encode())
    assert decoded.sdm == sdm
