"""Pupil photos: an upload is checked by its content, decoded, shrunk and re-encoded as a
plain JPEG, so that nothing of the original file (EXIF with GPS position, comments, other
embedded data) is ever stored or served.

Only JPEG and PNG are accepted, recognised by their first bytes, never by the name or
the type the browser claims. The image size is read from the header before decoding, so
a small file that would unpack into gigabytes of pixels is refused unread.
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

import cv2
import numpy as np

from school.errors import InvalidInput

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 30_000_000  # a 30-megapixel camera's photo; more is not a photo of a child
MAX_SIDE = 480  # pixels: the till screen shows a thumbnail
JPEG_QUALITY = 85
PHOTO_DIR = "photos"

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_NO_LENGTH = frozenset({0x01, *range(0xD0, 0xD8)})


class PhotoRejected(InvalidInput):
    """The upload is not a photo this server accepts; `code` names why for the page."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def image_kind(raw: bytes) -> str:
    if raw.startswith(_JPEG):
        return "jpeg"
    if raw.startswith(_PNG):
        return "png"
    raise PhotoRejected("type", "not a JPEG or PNG image")


def _png_size(raw: bytes) -> tuple[int, int]:
    if len(raw) < 24 or raw[12:16] != b"IHDR":
        raise PhotoRejected("corrupt", "a PNG without its header")
    width, height = struct.unpack(">II", raw[16:24])
    return width, height


def _jpeg_size(raw: bytes) -> tuple[int, int]:
    at = 2
    while at + 4 <= len(raw):
        if raw[at] != 0xFF:
            raise PhotoRejected("corrupt", "a JPEG whose segments do not follow each other")
        marker = raw[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _NO_LENGTH:
            at += 2
            continue
        (length,) = struct.unpack(">H", raw[at + 2:at + 4])
        if marker in _SOF:
            if at + 9 > len(raw):
                break
            height, width = struct.unpack(">HH", raw[at + 5:at + 9])
            return width, height
        if marker == 0xDA or length < 2:  # image data before any frame header
            break
        at += 2 + length
    raise PhotoRejected("corrupt", "a JPEG without a frame header")


def image_size(raw: bytes) -> tuple[int, int]:
    """Width and height as the file's header declares them."""
    return _jpeg_size(raw) if image_kind(raw) == "jpeg" else _png_size(raw)


def normalise(raw: bytes) -> bytes:
    """The upload as a JPEG of at most MAX_SIDE pixels a side, with no metadata at all;
    PhotoRejected if it is too big, not JPEG or PNG, or does not decode."""
    if len(raw) > MAX_UPLOAD_BYTES:
        raise PhotoRejected("size", f"a photo is at most {MAX_UPLOAD_BYTES // 1024 // 1024} MB")
    width, height = image_size(raw)
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise PhotoRejected("dimensions", f"an image of {width}×{height} pixels")
    # Decoding applies the EXIF orientation, so the re-encoded photo stands up straight.
    image = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise PhotoRejected("corrupt", "the image does not decode")
    scale = MAX_SIDE / max(image.shape[0], image.shape[1])
    if scale < 1:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise PhotoRejected("corrupt", "the image could not be re-encoded")
    return bytes(encoded.tobytes())


def relative_path(school_id: int, pupil_id: int) -> str:
    """Where a pupil's photo lives inside the data folder; built from ids only."""
    return f"{PHOTO_DIR}/{int(school_id)}/{int(pupil_id)}.jpg"


def store(data_dir: Path, school_id: int, pupil_id: int, jpeg: bytes) -> str:
    """Write the photo atomically (a reader sees the old one or the new one) and return
    the path to record on the pupil."""
    relative = relative_path(school_id, pupil_id)
    target = data_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(jpeg)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return relative


def read(data_dir: Path, photo_path: str | None) -> bytes | None:
    """The stored photo, or None; a recorded path outside the photo folder is ignored."""
    if not photo_path:
        return None
    root = (data_dir / PHOTO_DIR).resolve()
    path = (data_dir / photo_path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path.read_bytes()


def remove(data_dir: Path, photo_path: str | None) -> None:
    if not photo_path:
        return
    root = (data_dir / PHOTO_DIR).resolve()
    path = (data_dir / photo_path).resolve()
    if path.is_relative_to(root):
        path.unlink(missing_ok=True)
