"""Just enough NDEF to find the URI in a tag's message (NFC Forum NDEF and URI RTD)."""

from __future__ import annotations

from hardware.errors import CardProtocolError

# URI identifier codes of the NFC Forum URI RTD, table 3 (the ones tags actually use).
_URI_PREFIXES = {
    0x00: "",
    0x01: "http://www.",
    0x02: "https://www.",
    0x03: "http://",
    0x04: "https://",
}
_TNF_WELL_KNOWN = 0x01


def first_uri(message: bytes) -> str | None:
    """The URI of the first record when it is a well-known 'U' record, else None."""
    if not message:
        return None
    header = message[0]
    short = bool(header & 0x10)
    has_id = bool(header & 0x08)
    pos = 1
    try:
        type_len = message[pos]
        pos += 1
        if short:
            payload_len = message[pos]
            pos += 1
        else:
            payload_len = int.from_bytes(message[pos : pos + 4], "big")
            pos += 4
        id_len = message[pos] if has_id else 0
        pos += 1 if has_id else 0
        record_type = message[pos : pos + type_len]
        pos += type_len + id_len
        payload = message[pos : pos + payload_len]
    except IndexError as exc:
        raise CardProtocolError("NDEF record header is truncated") from exc
    if len(payload) != payload_len:
        raise CardProtocolError(f"NDEF payload is {len(payload)} bytes, header says {payload_len}")
    if header & 0x07 != _TNF_WELL_KNOWN or record_type != b"U" or not payload:
        return None
    try:
        rest = payload[1:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CardProtocolError("NDEF URI record is not UTF-8") from exc
    return _URI_PREFIXES.get(payload[0], "") + rest
