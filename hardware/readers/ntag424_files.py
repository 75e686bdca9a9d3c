"""NTAG 424 DNA file settings (datasheet §10.7.1–10.7.2): access rights, and the Secure
Dynamic Messaging block that says where the chip mirrors PICCData and its CMAC in the
NDEF file; and the NDEF file holding a SUN URL template with those offsets."""

from __future__ import annotations

from dataclasses import dataclass

from hardware.errors import CardProtocolError

FREE, NEVER = 0xE, 0xF
COMM_PLAIN, COMM_MAC, COMM_FULL = 0x0, 0x1, 0x3
_SDM_ENABLED = 0x40
_OPT_UID, _OPT_COUNTER, _OPT_LIMIT, _OPT_ENC, _OPT_ASCII = 0x80, 0x40, 0x20, 0x10, 0x01
PICC_PLACEHOLDER = "0" * 32
MAC_PLACEHOLDER = "0" * 16


def _u24(value: int) -> bytes:
    return value.to_bytes(3, "little")


@dataclass(frozen=True, slots=True)
class Sdm:
    """Where and with which keys the chip mirrors a SUN message (encrypted PICCData with
    UID and read counter, then a CMAC over the file from ``mac_input_offset``)."""

    meta_read: int
    file_read: int
    picc_offset: int
    mac_input_offset: int
    mac_offset: int
    counter_ret: int = NEVER
    uid: bool = True
    counter: bool = True

    def encode(self) -> bytes:
        if not 0 <= self.meta_read <= 4 or not 0 <= self.file_read <= 4:
            raise ValueError("Moulin mirrors encrypted PICCData and a CMAC: keys 0-4")
        options = _OPT_ASCII | (_OPT_UID if self.uid else 0) | (_OPT_COUNTER if self.counter else 0)
        rights = bytes([0xF0 | self.counter_ret, self.meta_read << 4 | self.file_read])
        return (bytes([options]) + rights + _u24(self.picc_offset)
                + _u24(self.mac_input_offset) + _u24(self.mac_offset))


@dataclass(frozen=True, slots=True)
class FileSettings:
    """A file's communication mode and access rights (a key number 0-4, FREE or NEVER)."""

    comm_mode: int
    read: int
    write: int
    read_write: int
    change: int
    size: int = 0
    sdm: Sdm | None = None

    def encode(self) -> bytes:
        """The data of ChangeFileSettings (without the file number)."""
        option = self.comm_mode | (_SDM_ENABLED if self.sdm else 0)
        rights = bytes([self.read_write << 4 | self.change, self.read << 4 | self.write])
        return bytes([option]) + rights + (self.sdm.encode() if self.sdm else b"")

    @classmethod
    def decode(cls, data: bytes) -> FileSettings:
        """Parse GetFileSettings' answer (file type, option, rights, size, SDM block)."""
        try:
            return cls._decode(data)
        except IndexError as exc:
            raise CardProtocolError("GetFileSettings: answer too short") from exc

    @classmethod
    def _decode(cls, data: bytes) -> FileSettings:
        option, rights = data[1], data[2:4]
        size = int.from_bytes(data[4:7], "little")
        sdm = _decode_sdm(data[7:]) if option & _SDM_ENABLED else None
        return cls(comm_mode=option & 0x03, read_write=rights[0] >> 4, change=rights[0] & 0xF,
                   read=rights[1] >> 4, write=rights[1] & 0xF, size=size, sdm=sdm)


def _decode_sdm(block: bytes) -> Sdm:
    options, counter_ret = block[0], block[1] & 0xF
    meta_read, file_read = block[2] >> 4, block[2] & 0xF
    fields, pos = [], 3

    def take() -> int:
        nonlocal pos
        if pos + 3 > len(block):
            raise IndexError
        pos += 3
        return int.from_bytes(block[pos - 3 : pos], "little")

    picc = 0
    if meta_read == FREE:  # UID and counter mirrored in clear, each at its own offset
        fields += [take() for flag in (_OPT_UID, _OPT_COUNTER) if options & flag]
    elif meta_read != NEVER:
        picc = take()
    mac_input = mac = 0
    if file_read != NEVER:
        mac_input = take()
        if options & _OPT_ENC:
            fields += [take(), take()]  # SDMENCOffset, SDMENCLength
        mac = take()
    return Sdm(meta_read=meta_read, file_read=file_read, picc_offset=picc,
               mac_input_offset=mac_input, mac_offset=mac, counter_ret=counter_ret,
               uid=bool(options & _OPT_UID), counter=bool(options & _OPT_COUNTER))


@dataclass(frozen=True, slots=True)
class SunTemplate:
    """The NDEF file's bytes for ``base?picc_data=<32 zeros>&cmac=<16 zeros>`` and the
    offsets, counted from the start of the file (NLEN included), where the chip writes."""

    url: str
    file: bytes
    picc_offset: int
    mac_offset: int

    @classmethod
    def for_base(cls, base: str) -> SunTemplate:
        if "?" in base:
            raise ValueError("the SUN base URL must not have a query of its own")
        url = f"{base}?picc_data={PICC_PLACEHOLDER}&cmac={MAC_PLACEHOLDER}"
        code, rest = (0x04, url[8:]) if url.startswith("https://") else (0x00, url)
        payload = bytes([code]) + rest.encode("ascii")
        if len(payload) > 255:
            raise ValueError("the SUN URL is too long for one short NDEF record")
        record = bytes([0xD1, 0x01, len(payload)]) + b"U" + payload
        file = len(record).to_bytes(2, "big") + record
        picc = file.index(b"picc_data=") + len("picc_data=")
        mac = file.index(b"&cmac=") + len("&cmac=")
        return cls(url=url, file=file, picc_offset=picc, mac_offset=mac)

    def sdm(self, *, meta_read: int, file_read: int) -> Sdm:
        """SDM settings for this template: the MAC covers nothing but the session (its
        input starts where it is written), as in AN12196 §4.1."""
        return Sdm(meta_read=meta_read, file_read=file_read, picc_offset=self.picc_offset,
                   mac_input_offset=self.mac_offset, mac_offset=self.mac_offset)
