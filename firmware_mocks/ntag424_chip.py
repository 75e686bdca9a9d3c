"""An NTAG 424 DNA as it leaves the factory, for personalising tests: five AES keys (all
zero, version 0), SDM off, and the card side of the chip's secure messaging (NXP
NT4H2421Gx datasheet §9–10, checked against AN12196 by tests/firmware_mocks).

State kept between taps (:class:`Chip`): keys and their versions, the NDEF file's bytes
and settings, the SDM read counter (24-bit, back to 0 whenever SDM is switched on), and
the failed-authentication counter (limit 1000, each success takes 10 off; at the limit
every authentication is refused). :attr:`Chip.failed_authentications` counts every
failure ever, for tests. State of one tap (:class:`ChipSession`): the selected file and
the authenticated session, which an error status or a new selection ends.

Written independently of ``hardware.readers.ntag424``: the two share no code.
"""

from __future__ import annotations

import binascii
import hmac
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from firmware_mocks import sun

OK, ISO_OK = b"\x91\x00", b"\x90\x00"
MORE = b"\x91\xaf"
AUTH_ERROR, LENGTH_ERROR, PERMISSION_DENIED = b"\x91\xae", b"\x91\x7e", b"\x91\x9d"
INTEGRITY_ERROR, NO_SUCH_KEY, PARAMETER_ERROR = b"\x91\x1e", b"\x91\x40", b"\x91\x9e"
ILLEGAL_COMMAND, BOUNDARY_ERROR, FILE_NOT_FOUND = b"\x91\x1c", b"\x91\xbe", b"\x91\xf0"
NDEF_AID = bytes.fromhex("D2760000850101")
CC_424 = bytes.fromhex("001720010000FF0406E104010000000506E10500808283")
VERSION_FRAMES = (bytes.fromhex("04040230001105"), bytes.fromhex("04040201001105"))
FILE_IDS = {b"\xe1\x03": 1, b"\xe1\x04": 2, b"\xe1\x05": 3}
FREE, NEVER = 0xE, 0xF


def _cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def _aes(key: bytes, iv: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    worker = cipher.decryptor() if decrypt else cipher.encryptor()
    return worker.update(data) + worker.finalize()


def _crc(data: bytes) -> bytes:
    return (binascii.crc32(data) ^ 0xFFFFFFFF).to_bytes(4, "little")


@dataclass
class ChipFile:
    """One standard data file: content, CommMode, access rights, optional SDM block."""

    content: bytearray
    comm_mode: int
    rights: tuple[int, int, int, int]  # read_write, change, read, write
    sdm: bytes | None = None

    def settings(self) -> bytes:
        rw, change, read, write = self.rights
        option = self.comm_mode | (0x40 if self.sdm is not None else 0)
        size = len(self.content).to_bytes(3, "little")
        return bytes([0x00, option, rw << 4 | change, read << 4 | write]) + size + (self.sdm or b"")


@dataclass
class Chip:
    """What the card remembers with no power."""

    uid: bytes
    keys: list[bytes] = field(default_factory=lambda: [bytes(16)] * 5)
    versions: list[int] = field(default_factory=lambda: [0] * 5)
    sdm_counter: int = 0
    fail_counter: int = 0
    fail_limit: int = 1000
    fail_decrement: int = 10
    failed_authentications: int = 0
    random: Callable[[int], bytes] = os.urandom
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.files = {
            1: ChipFile(bytearray(CC_424.ljust(32, b"\0")), 0, (FREE, 0, FREE, 0)),
            2: ChipFile(bytearray(256), 0, (FREE, 0, FREE, FREE)),
            3: ChipFile(bytearray(128), 3, (3, 0, 2, 3)),
        }

    def ndef_read(self) -> bytes:
        """The NDEF file as one read shows it, with the SUN mirrors when SDM is on."""
        file = self.files[2]
        content = bytes(file.content)
        if file.sdm is None:
            return content
        with self.lock:
            self.sdm_counter = (self.sdm_counter + 1) % (1 << 24)
            counter = self.sdm_counter
        return mirror(content, file.sdm, self.uid, counter, self.keys, self.random(5))

    def session(self) -> ChipSession:
        return ChipSession(self)

    def dump(self) -> dict[str, object]:
        """Everything the chip remembers, as JSON-able values (``moulin mock card`` keeps
        a card between taps this way)."""
        files = {str(no): {"content": f.content.hex(), "comm_mode": f.comm_mode,
                           "rights": list(f.rights), "sdm": f.sdm.hex() if f.sdm else None}
                 for no, f in self.files.items()}
        return {"uid": self.uid.hex(), "keys": [k.hex() for k in self.keys],
                "versions": self.versions, "sdm_counter": self.sdm_counter,
                "fail_counter": self.fail_counter,
                "failed_authentications": self.failed_authentications, "files": files}

    @classmethod
    def load(cls, saved: dict[str, Any]) -> Chip:
        chip = cls(uid=bytes.fromhex(saved["uid"]), keys=[bytes.fromhex(k) for k in saved["keys"]],
                   versions=list(saved["versions"]), sdm_counter=saved["sdm_counter"],
                   fail_counter=saved["fail_counter"],
                   failed_authentications=saved["failed_authentications"])
        for no, f in saved["files"].items():
            rw, change, read, write = f["rights"]
            chip.files[int(no)] = ChipFile(bytearray.fromhex(f["content"]), f["comm_mode"],
                                           (rw, change, read, write),
                                           bytes.fromhex(f["sdm"]) if f["sdm"] else None)
        return chip


def mirror(content: bytes, sdm: bytes, uid: bytes, counter: int, keys: list[bytes],
           padding: bytes) -> bytes:
    """Write encrypted PICCData and the CMAC (ASCII hex) where the SDM block says."""
    meta_key_no, file_key_no = sdm[2] >> 4, sdm[2] & 0xF
    picc_at, mac_input_at, mac_at = (int.from_bytes(sdm[i : i + 3], "little") for i in (3, 6, 9))
    out = bytearray(content)
    picc = sun.encrypt_picc_data(keys[meta_key_no], uid, counter, padding).hex().upper()
    out[picc_at : picc_at + 32] = picc.encode()
    mac_input = bytes(out[mac_input_at:mac_at])
    mac = sun.sdm_mac(keys[file_key_no], uid, counter, mac_input).hex().upper()
    out[mac_at : mac_at + 16] = mac.encode()
    return bytes(out)


@dataclass
class _Auth:
    key_no: int
    enc: bytes
    mac: bytes
    ti: bytes
    counter: int = 0

    def iv(self, label: bytes, counter: int) -> bytes:
        return _aes(self.enc, bytes(16), label + self.ti + counter.to_bytes(2, "little") + bytes(8))

    def mac_of(self, first: int, data: bytes, counter: int) -> bytes:
        body = bytes([first]) + counter.to_bytes(2, "little") + self.ti + data
        return _cmac(self.mac, body)[1::2]


class _Refusal(Exception):
    def __init__(self, status: bytes) -> None:
        super().__init__(status.hex())
        self.status = status


class ChipSession:
    """One tap's exchange with the chip: ISO and native commands, secure messaging."""

    def __init__(self, chip: Chip) -> None:
        self.chip = chip
        self.app_selected = False
        self.file: int | None = None
        self.read_image: bytes | None = None
        self.auth: _Auth | None = None
        self._pending: tuple[int, bytes, bytes] | None = None  # key no, key, RndB
        self._version_frame = 0

    def respond(self, apdu: bytes) -> bytes:
        if apdu[:2] == b"\x00\xa4":
            return self._select(apdu)
        if apdu[:2] == b"\x00\xb0":
            return self._read_binary(apdu)
        if apdu[0] != 0x90 or len(apdu) < 5:
            return b"\x6e\x00"
        ins, data = apdu[1], apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else b""
        if len(apdu) > 5 and len(apdu) != 6 + apdu[4]:
            return self._error(LENGTH_ERROR)
        try:
            answer = self._native(ins, data)
        except _Refusal as refusal:
            answer = refusal.status
        if answer[-2:] not in (OK, MORE):
            self._error(answer[-2:])
        return answer

    def _error(self, status: bytes) -> bytes:
        self.auth = None  # an error ends the authenticated session
        self._pending = None
        return status

    def _native(self, ins: int, data: bytes) -> bytes:
        if ins == 0x60 or (ins == 0xAF and self._version_frame):
            return self._get_version(ins)
        if ins == 0x71:
            return self._auth_first(data)
        if ins == 0xAF and self._pending is not None:
            return self._auth_second(data)
        handlers = {0x51: self._get_card_uid, 0x64: self._get_key_version,
                    0xC4: self._change_key, 0xF5: self._get_file_settings,
                    0x5F: self._change_file_settings, 0x8D: self._write_data}
        handler = handlers.get(ins)
        if handler is None:
            return ILLEGAL_COMMAND
        if not self.app_selected and ins != 0x64:
            return PERMISSION_DENIED
        return handler(data)

    def _select(self, apdu: bytes) -> bytes:
        name = apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else b""
        self.auth, self._pending = None, None
        if apdu[2] == 0x04:
            self.app_selected, self.file = name == NDEF_AID, None
            return ISO_OK if self.app_selected else b"\x6a\x82"
        if not self.app_selected or name not in FILE_IDS:
            return b"\x6a\x82"
        self.file, self.read_image = FILE_IDS[name], None
        return ISO_OK

    def _read_binary(self, apdu: bytes) -> bytes:
        if self.file is None:
            return b"\x69\x86"
        file = self.chip.files[self.file]
        if file.rights[2] != FREE:
            return b"\x69\x82"  # security status not satisfied: reads need a key
        if self.read_image is None:  # the chip mirrors (and counts) once per read
            content = self.chip.ndef_read() if self.file == 2 else bytes(file.content)
            self.read_image = content
        offset, length = int.from_bytes(apdu[2:4], "big"), apdu[4] or 256
        if offset > len(self.read_image):
            return b"\x6b\x00"
        return self.read_image[offset : offset + length] + ISO_OK

    def _get_version(self, ins: int) -> bytes:
        frame = 0 if ins == 0x60 else self._version_frame
        self._version_frame = (frame + 1) % 3
        if frame < 2:
            return VERSION_FRAMES[frame] + MORE
        return self.chip.uid + bytes.fromhex("CF39A4A5802124") + OK

    # -- AuthenticateEV2First -------------------------------------------------------

    def _auth_first(self, data: bytes) -> bytes:
        self.auth = None
        if len(data) < 2:
            return LENGTH_ERROR
        if data[0] > 4:
            return NO_SUCH_KEY
        if self.chip.fail_counter >= self.chip.fail_limit:
            return AUTH_ERROR  # the counter is at its limit: authentication is over
        key = self.chip.keys[data[0]]
        rnd_b = self.chip.random(16)
        self._pending = (data[0], key, rnd_b)
        return _aes(key, bytes(16), rnd_b) + MORE

    def _auth_second(self, data: bytes) -> bytes:
        assert self._pending is not None
        key_no, key, rnd_b = self._pending
        self._pending = None
        if len(data) != 32:
            return LENGTH_ERROR
        plain = _aes(key, bytes(16), data, decrypt=True)
        rnd_a = plain[:16]
        if not hmac.compare_digest(plain[16:], rnd_b[1:] + rnd_b[:1]):
            with self.chip.lock:
                self.chip.fail_counter += 1
                self.chip.failed_authentications += 1
            return AUTH_ERROR
        with self.chip.lock:
            self.chip.fail_counter = max(0, self.chip.fail_counter - self.chip.fail_decrement)
        ti = self.chip.random(4)
        context = (rnd_a[:2] + bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[:6], strict=True))
                   + rnd_b[6:] + rnd_a[8:])
        tail = b"\x00\x01\x00\x80" + context
        enc, mac = _cmac(key, b"\xa5\x5a" + tail), _cmac(key, b"\x5a\xa5" + tail)
        self.auth = _Auth(key_no, enc, mac, ti)
        answer = ti + rnd_a[1:] + rnd_a[:1] + bytes(12)
        return _aes(key, bytes(16), answer) + OK

    # -- secure messaging -----------------------------------------------------------

    def _open(self, ins: int, data: bytes, header_len: int, mode: int) -> bytes | None:
        """Check the command's MAC (and decrypt in Full mode): header + plain data, or
        None when the MAC or the padding is wrong."""
        auth = self.auth
        assert auth is not None
        if len(data) < header_len + 8:
            raise _Refusal(LENGTH_ERROR)  # no room for a MAC: sent in the wrong CommMode
        header, body, mac = data[:header_len], data[header_len:-8], data[-8:]
        if not hmac.compare_digest(mac, auth.mac_of(ins, header + body, auth.counter)):
            return None
        if mode != 3 or not body:
            return header + body
        if len(body) % 16:
            return None
        plain = _aes(auth.enc, auth.iv(b"\xa5\x5a", auth.counter), body, decrypt=True)
        stripped = plain.rstrip(b"\x00")
        if not stripped.endswith(b"\x80"):
            return None
        return header + stripped[:-1]

    def _seal(self, data: bytes = b"", *, full: bool = False) -> bytes:
        """An answer in MAC or Full mode; the command counter moves on first."""
        auth = self.auth
        assert auth is not None
        auth.counter += 1
        body = data
        if full and data:
            padded = data + b"\x80" + bytes(-(len(data) + 1) % 16)
            body = _aes(auth.enc, auth.iv(b"\x5a\xa5", auth.counter), padded)
        return body + auth.mac_of(0x00, body, auth.counter) + OK

    def _secured(self, ins: int, data: bytes, header_len: int, mode: int) -> bytes:
        """The command's header and plain data; refused without a session or MAC."""
        if self.auth is None:
            raise _Refusal(PERMISSION_DENIED)
        opened = self._open(ins, data, header_len, mode)
        if opened is None:
            raise _Refusal(INTEGRITY_ERROR)
        return opened

    def _get_card_uid(self, data: bytes) -> bytes:
        self._secured(0x51, data, 0, 3)
        return self._seal(self.chip.uid, full=True)

    def _get_key_version(self, data: bytes) -> bytes:
        if self.auth is None:
            if len(data) != 1:
                return LENGTH_ERROR
            return (bytes([self.chip.versions[data[0]]]) + OK) if data[0] < 5 else NO_SUCH_KEY
        opened = self._secured(0x64, data, 1, 1)
        if len(opened) != 1:
            return LENGTH_ERROR
        if opened[0] > 4:
            return NO_SUCH_KEY
        return self._seal(bytes([self.chip.versions[opened[0]]]))

    def _get_file_settings(self, data: bytes) -> bytes:
        if self.auth is None:
            if len(data) != 1 or data[0] not in self.chip.files:
                return LENGTH_ERROR if len(data) != 1 else FILE_NOT_FOUND
            return self.chip.files[data[0]].settings() + OK
        opened = self._secured(0xF5, data, 1, 1)
        if len(opened) != 1:
            return LENGTH_ERROR
        if opened[0] not in self.chip.files:
            return FILE_NOT_FOUND
        return self._seal(self.chip.files[opened[0]].settings())

    def _change_key(self, data: bytes) -> bytes:
        if self.auth is None or self.auth.key_no != 0:
            return PERMISSION_DENIED
        opened = self._secured(0xC4, data, 1, 3)
        key_no, body = opened[0], opened[1:]
        if key_no > 4:
            return NO_SUCH_KEY
        if key_no == self.auth.key_no:
            if len(body) != 17:
                return LENGTH_ERROR
            self.chip.keys[0], self.chip.versions[0] = body[:16], body[16]
            self.auth = None  # the session's own key changed: the session is over
            return OK
        if len(body) != 21:
            return LENGTH_ERROR
        new = bytes(a ^ b for a, b in zip(body[:16], self.chip.keys[key_no], strict=True))
        if body[17:21] != _crc(new):
            return INTEGRITY_ERROR  # wrong old key, or a garbled new one
        self.chip.keys[key_no], self.chip.versions[key_no] = new, body[16]
        return self._seal()

    def _change_file_settings(self, data: bytes) -> bytes:
        if self.auth is None:
            return PERMISSION_DENIED
        if not data or data[0] not in self.chip.files:
            return FILE_NOT_FOUND
        file = self.chip.files[data[0]]
        if file.rights[1] not in (self.auth.key_no, FREE):
            return PERMISSION_DENIED
        opened = self._secured(0x5F, data, 1, 3)
        return self._apply_settings(file, opened[1:])

    def _apply_settings(self, file: ChipFile, settings: bytes) -> bytes:
        if len(settings) < 3:
            return LENGTH_ERROR
        option, rights = settings[0], settings[1:3]
        sdm = settings[3:] if option & 0x40 else None
        if sdm is not None and not _sdm_fits(sdm, len(file.content)):
            return PARAMETER_ERROR
        if sdm is None and len(settings) != 3:
            return LENGTH_ERROR
        if sdm is not None and file.sdm is None:
            self.chip.sdm_counter = 0  # counting restarts whenever SDM is switched on
        file.comm_mode = option & 0x03
        file.rights = (rights[0] >> 4, rights[0] & 0xF, rights[1] >> 4, rights[1] & 0xF)
        file.sdm = sdm
        return self._seal()

    def _write_data(self, data: bytes) -> bytes:
        if len(data) < 7 or data[0] not in self.chip.files:
            return LENGTH_ERROR if len(data) < 7 else FILE_NOT_FOUND
        file = self.chip.files[data[0]]
        write, read_write = file.rights[3], file.rights[0]
        allowed = FREE in (write, read_write) or (
            self.auth is not None and self.auth.key_no in (write, read_write))
        if not allowed:
            return PERMISSION_DENIED
        if file.comm_mode != 0 and self.auth is not None:
            data = self._secured(0x8D, data, 7, file.comm_mode)
        elif file.comm_mode != 0:
            return PERMISSION_DENIED  # a MAC or Full file needs a session
        offset, length = (int.from_bytes(data[i : i + 3], "little") for i in (1, 4))
        chunk = data[7:]
        if len(chunk) != length:
            return LENGTH_ERROR  # a CommMode mismatch lands here too
        if offset + length > len(file.content):
            return BOUNDARY_ERROR
        file.content[offset : offset + length] = chunk
        if self.auth is not None and file.comm_mode == 0:
            self.auth.counter += 1
            return OK
        return self._seal() if self.auth is not None else OK


def _sdm_fits(sdm: bytes, size: int) -> bool:
    if len(sdm) != 12 or sdm[0] & 0x30 or sdm[2] >> 4 > 4 or sdm[2] & 0xF > 4:
        return False  # this mock mirrors encrypted PICCData and a CMAC, nothing else
    picc, mac_input, mac = (int.from_bytes(sdm[i : i + 3], "little") for i in (3, 6, 9))
    return picc + 32 <= size and mac_input <= mac and mac + 16 <= size
