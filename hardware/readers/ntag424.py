"""NTAG 424 DNA native commands, wrapped in ISO 7816-4 APDUs (``90 INS 00 00 Lc … 00``),
over any link that sends an APDU and returns (data, status word), such as
:class:`hardware.readers.pcsc_link.CardLink`.

================================  ===========  ==========================================
command                           CommMode     notes
================================  ===========  ==========================================
ISOSelectFile (``00 A4``)         plain        the NDEF application, then a file
AuthenticateEV2First (``71``)     —            AES; starts a :class:`SecureChannel`
GetCardUID (``51``)               Full         needs authentication
GetKeyVersion (``64``)            plain / MAC  plain before authentication
ChangeKey (``C4``)                Full         key 0 as is; others XORed with the old key
                                               and followed by CRC32; changing the
                                               session's own key ends the session
GetFileSettings (``F5``)          plain / MAC
ChangeFileSettings (``5F``)       Full         SDM mirrors, offsets and keys
WriteData (``8D``)                the file's   the NDEF file is plain: writes are sent
                                               plain (counted when authenticated)
================================  ===========  ==========================================

An error status ends the authenticated session, as on the chip.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from typing import Protocol

from hardware.errors import CardProtocolError
from hardware.readers.ntag424_crypto import (
    SecureChannel,
    cbc_decrypt,
    cbc_encrypt,
    crc32_nk,
    rotate_left,
    session_keys,
)
from hardware.readers.ntag424_files import COMM_FULL, COMM_MAC, FileSettings

NDEF_AID = bytes.fromhex("D2760000850101")
NDEF_FILE_ID, NDEF_FILE_NO = b"\xe1\x04", 0x02
KEY_COUNT = 5
SW_OK, SW_MORE = 0x9100, 0x91AF
_MAX_WRITE = 128
STATUS_NAMES = {
    0x911C: "illegal command",
    0x911E: "integrity error",
    0x9140: "no such key",
    0x917E: "length error",
    0x919D: "permission denied",
    0x919E: "parameter error",
    0x91AD: "authentication delay",
    0x91AE: "authentication error",
    0x91BE: "boundary error",
    0x91CA: "command aborted",
    0x91EE: "memory error",
    0x91F0: "file not found",
}


class Link(Protocol):
    def transmit(self, apdu: bytes) -> tuple[bytes, int]: ...


class CommandRefused(CardProtocolError):
    """The chip answered a command with an error status."""

    def __init__(self, what: str, status: int) -> None:
        name = STATUS_NAMES.get(status, "unexpected status")
        super().__init__(f"{what}: {name} ({status:04X})")
        self.status = status


class AuthenticationFailed(CommandRefused):
    """The key tried is not the card's (91AE): the chip counted one failure."""


def native(ins: int, data: bytes = b"") -> bytes:
    return bytes([0x90, ins, 0, 0]) + (bytes([len(data)]) + data if data else b"") + b"\x00"


class Ntag424:
    """One NTAG 424 DNA on a link, with at most one authenticated session."""

    def __init__(self, link: Link, *, random: Callable[[int], bytes] = os.urandom) -> None:
        self.link = link
        self.channel: SecureChannel | None = None
        self._random = random

    def _send(self, what: str, apdu: bytes, expect: int = SW_OK) -> bytes:
        data, status = self.link.transmit(apdu)
        if status != expect:
            self.channel = None
            error = AuthenticationFailed if status == 0x91AE else CommandRefused
            raise error(what, status)
        return data

    def select_application(self) -> None:
        self.channel = None
        _data, status = self.link.transmit(bytes.fromhex("00A4040007") + NDEF_AID + b"\x00")
        if status != 0x9000:
            raise CommandRefused("ISOSelectFile (NDEF application)", status)

    def select_file(self, file_id: bytes) -> None:
        _data, status = self.link.transmit(bytes.fromhex("00A4000C02") + file_id)
        if status != 0x9000:
            raise CommandRefused(f"ISOSelectFile ({file_id.hex().upper()})", status)

    def authenticate(self, key_no: int, key: bytes) -> SecureChannel:
        """AuthenticateEV2First. Raises AuthenticationFailed when ``key`` is wrong."""
        self.channel = None
        what = f"AuthenticateEV2First (key {key_no})"
        enc_rnd_b = self._send(what, native(0x71, bytes([key_no, 0])), SW_MORE)
        if len(enc_rnd_b) != 16:
            raise CardProtocolError(f"{what}: 16 bytes of RndB expected")
        rnd_b = cbc_decrypt(key, bytes(16), enc_rnd_b)
        rnd_a = self._random(16)
        token = cbc_encrypt(key, bytes(16), rnd_a + rotate_left(rnd_b))
        answer = self._send(what, native(0xAF, token))
        if len(answer) != 32:
            raise CardProtocolError(f"{what}: 32 bytes expected in the last answer")
        plain = cbc_decrypt(key, bytes(16), answer)
        if not hmac.compare_digest(plain[4:20], rotate_left(rnd_a)):
            raise CardProtocolError(f"{what}: the card did not prove it holds the key")
        enc_key, mac_key = session_keys(key, rnd_a, rnd_b)
        self.channel = SecureChannel(key_no, enc_key, mac_key, ti=plain[:4])
        return self.channel

    def _secure(self, what: str, ins: int, header: bytes, data: bytes, mode: int,
                *, answer_mac: bool = True) -> bytes:
        """Send a command in CommMode.MAC or Full; check and open the answer."""
        channel = self.channel
        if channel is None:
            raise CardProtocolError(f"{what}: needs authentication first")
        body = channel.encrypt_command(data) if mode == COMM_FULL and data else data
        mac = channel.command_mac(ins, header, body)
        answer = self._send(what, native(ins, header + body + mac))
        channel.counter += 1
        if not answer_mac:
            return answer
        if len(answer) < 8:
            raise CardProtocolError(f"{what}: answer without its MAC")
        content, mac = answer[:-8], answer[-8:]
        if not hmac.compare_digest(mac, channel.response_mac(0x00, content)):
            self.channel = None
            raise CardProtocolError(f"{what}: the answer's MAC is wrong")
        return channel.decrypt_response(content) if mode == COMM_FULL and content else content

    def get_card_uid(self) -> bytes:
        uid = self._secure("GetCardUID", 0x51, b"", b"", COMM_FULL)
        if len(uid) not in (4, 7, 10):
            raise CardProtocolError(f"GetCardUID: {len(uid)} bytes is no UID")
        return uid

    def get_key_version(self, key_no: int) -> int:
        what, header = f"GetKeyVersion (key {key_no})", bytes([key_no])
        if self.channel is None:
            answer = self._send(what, native(0x64, header))
        else:
            answer = self._secure(what, 0x64, header, b"", COMM_MAC)
        if len(answer) != 1:
            raise CardProtocolError(f"{what}: one byte expected")
        return answer[0]

    def change_key(self, key_no: int, new_key: bytes, version: int,
                   old_key: bytes | None = None) -> None:
        """ChangeKey, authenticated with key 0. Changing key 0 ends the session."""
        if len(new_key) != 16 or not 0 <= version <= 0xFF:
            raise ValueError("an AES key is 16 bytes, its version one byte")
        channel = self.channel
        if channel is None or channel.key_no != 0:
            raise CardProtocolError("ChangeKey: needs authentication with key 0")
        if key_no == channel.key_no:
            data = new_key + bytes([version])
        else:
            if old_key is None or len(old_key) != 16:
                raise ValueError(f"changing key {key_no} needs its current value")
            mixed = bytes(a ^ b for a, b in zip(new_key, old_key, strict=True))
            data = mixed + bytes([version]) + crc32_nk(new_key)
        own = key_no == channel.key_no
        self._secure(f"ChangeKey (key {key_no})", 0xC4, bytes([key_no]), data, COMM_FULL,
                     answer_mac=not own)
        if own:
            self.channel = None

    def get_file_settings(self, file_no: int) -> FileSettings:
        what, header = f"GetFileSettings (file {file_no})", bytes([file_no])
        if self.channel is None:
            answer = self._send(what, native(0xF5, header))
        else:
            answer = self._secure(what, 0xF5, header, b"", COMM_MAC)
        return FileSettings.decode(answer)

    def change_file_settings(self, file_no: int, settings: FileSettings) -> None:
        self._secure(f"ChangeFileSettings (file {file_no})", 0x5F, bytes([file_no]),
                     settings.encode(), COMM_FULL)

    def write_data(self, file_no: int, data: bytes, offset: int = 0) -> None:
        """WriteData in plain mode (the NDEF file's), in chunks a short APDU carries."""
        for start in range(0, len(data), _MAX_WRITE):
            chunk = data[start : start + _MAX_WRITE]
            header = (bytes([file_no]) + (offset + start).to_bytes(3, "little")
                      + len(chunk).to_bytes(3, "little"))
            self._send(f"WriteData (file {file_no})", native(0x8D, header + chunk))
            if self.channel is not None:
                self.channel.counter += 1
