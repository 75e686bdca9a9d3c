"""One card session's APDU answers, as a PC/SC reader relays them: the reader's own
pseudo-APDUs (``FF …``: UID, LED/buzzer, direct transmit) and, for an NTAG 424 DNA,
GetVersion, ISO SELECT and READ BINARY of the NDEF file with a fresh SUN URL."""

from __future__ import annotations

from firmware_mocks.cards import (
    CC_424,
    CC_FILE,
    NDEF_AID,
    NDEF_FILE,
    OK,
    VERSION_424,
    CardState,
    Kind,
)

SW_WRONG_LENGTH = b"\x67\x00"
SW_NOT_FOUND = b"\x6a\x82"
SW_NOT_SUPPORTED = b"\x6a\x81"
SW_WRONG_OFFSET = b"\x6b\x00"
SW_INS_UNKNOWN = b"\x6d\x00"
SW_CLA_UNKNOWN = b"\x6e\x00"
SW_ADDITIONAL_FRAME = b"\x91\xaf"
SW_DESFIRE_OK = b"\x91\x00"
SW_COMMAND_NOT_ALLOWED = b"\x69\x86"


class ApduSession:
    """The state of one tap: selected application and file, GetVersion frame."""

    def __init__(self, state: CardState) -> None:
        self.state = state
        self._app_selected = False
        self._file: bytes | None = None
        self._file_content = b""
        self._version_frame = 0
        self._chip = state.chip.session() if state.chip is not None else None

    def respond(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return SW_WRONG_LENGTH
        if apdu[0] == 0xFF:
            return self._reader_command(apdu)
        if self.state.kind is not Kind.NTAG424_DNA:
            return SW_CLA_UNKNOWN
        if self._chip is not None:
            return self._chip.respond(apdu)
        if apdu[0] == 0x90:
            return self._get_version(apdu)
        if apdu[:2] == b"\x00\xa4":
            return self._select(apdu)
        if apdu[:2] == b"\x00\xb0":
            return self._read_binary(apdu)
        return SW_INS_UNKNOWN

    def _reader_command(self, apdu: bytes) -> bytes:
        if apdu[1:4] == b"\xca\x00\x00":
            return self._get_uid(apdu)
        if apdu[1:3] == b"\x00\x40" and len(apdu) == 9:
            self.state.record_feedback(apdu)
            return b"\x90" + bytes([apdu[3] & 0x03])
        if apdu[1:4] == b"\x00\x00\x00" and apdu[5:7] == b"\xd4\x42":
            answer = self.state.type2(apdu[7 : 5 + apdu[4]])
            if answer is None:
                return b"\xd5\x43\x01" + OK  # PN532 status 01: the tag timed out
            return b"\xd5\x43\x00" + answer + OK
        return SW_NOT_SUPPORTED

    def _get_uid(self, apdu: bytes) -> bytes:
        uid = self.state.uid
        le = apdu[4] if len(apdu) > 4 else 0
        if le not in (0, len(uid)):
            return b"\x6c" + bytes([len(uid)])
        return uid + OK

    def _get_version(self, apdu: bytes) -> bytes:
        if apdu[1] == 0x60:
            self._version_frame = 0
        elif apdu[1] != 0xAF or self._version_frame == 0:
            return SW_COMMAND_NOT_ALLOWED if apdu[1] == 0xAF else SW_INS_UNKNOWN
        frame = self._version_frame
        self._version_frame = (frame + 1) % 3
        if frame < 2:
            return VERSION_424[frame] + SW_ADDITIONAL_FRAME
        return self.state.uid + bytes.fromhex("CF39A4A5802124") + SW_DESFIRE_OK

    def _select(self, apdu: bytes) -> bytes:
        if len(apdu) < 5 or len(apdu) < 5 + apdu[4]:
            return SW_WRONG_LENGTH
        data = apdu[5 : 5 + apdu[4]]
        if apdu[2] == 0x04:
            self._app_selected = data == NDEF_AID
            self._file = None
            return OK if self._app_selected else SW_NOT_FOUND
        if not self._app_selected or data not in (CC_FILE, NDEF_FILE):
            return SW_NOT_FOUND
        self._file = data
        self._file_content = b""
        return OK

    def _read_binary(self, apdu: bytes) -> bytes:
        if self._file is None:
            return SW_COMMAND_NOT_ALLOWED
        if not self._file_content:
            # The chip mirrors (and counts) once per read of the selected file.
            is_ndef = self._file == NDEF_FILE
            self._file_content = self.state.next_sun_file() if is_ndef else CC_424
        offset = int.from_bytes(apdu[2:4], "big")
        length = apdu[4] if len(apdu) > 4 and apdu[4] else 256
        if offset > len(self._file_content):
            return SW_WRONG_OFFSET
        return self._file_content[offset : offset + length] + OK
