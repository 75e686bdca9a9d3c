"""The driver registry and the small NDEF parser, without any device."""

from __future__ import annotations

import pytest

from hardware.errors import CardProtocolError
from hardware.readers import CardKind, CardRead, masked_uid, open_reader
from hardware.readers.ndef import first_uri

PAYLOAD = b"\x04example.com/a"
URI_RECORD = bytes([0xD1, 0x01, len(PAYLOAD)]) + b"U" + PAYLOAD


def test_unknown_reader_configuration_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="pcsc, pcsc:NAME, nfc:usb"):
        open_reader("serial:/dev/ttyUSB0")


def test_nfc_udp_configuration_opens_the_nfcpy_driver() -> None:
    reader = open_reader("nfc:udp:127.0.0.1:9")
    try:
        assert reader.name == "nfc:udp:127.0.0.1:9"
    finally:
        reader.close()


def test_first_uri_expands_the_prefix() -> None:
    assert first_uri(URI_RECORD) == "https://example.com/a"


def test_first_uri_ignores_other_records() -> None:
    text_record = bytes.fromhex("D101035402656E")
    assert first_uri(text_record) is None


def test_a_truncated_ndef_record_is_a_protocol_error() -> None:
    with pytest.raises(CardProtocolError, match="header says"):
        first_uri(URI_RECORD[:-3])


def test_uids_are_masked_in_logs_and_reprs() -> None:
    uid = bytes.fromhex("04A1B2C3D4E5F6")
    read = CardRead(uid=uid, kind=CardKind.NTAG215, reader="r")
    assert masked_uid(uid) == "04…F6/7"
    assert "A1B2" not in repr(read).upper()
