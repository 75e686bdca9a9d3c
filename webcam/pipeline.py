"""The frame pipeline: everything done to an image before any viewer can have it.

A live frame has the privacy masks filled black first (before any encoding), then the
watermark (school, room, local time), then it is JPEG-encoded once and framed once as a
multipart part that every viewer is sent as is. Cards (paused, outside broadcast hours,
camera offline, stream ended) are drawn and encoded at most once a second per kind.
"""

from __future__ import annotations

import enum
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import numpy.typing as npt

from hardware.cameras.base import Frame, Image
from webcam.errors import EncodeFailed

BOUNDARY = "moulinframe"
Point = tuple[float, float]


class FrameKind(enum.StrEnum):
    LIVE = "live"
    PAUSED = "paused"
    OUTSIDE_HOURS = "outside_hours"
    OFFLINE = "offline"
    ENDED = "ended"


DEFAULT_CARD_TEXTS: Mapping[FrameKind, str] = MappingProxyType(
    {
        FrameKind.PAUSED: "Broadcast paused",
        FrameKind.OUTSIDE_HOURS: "Outside broadcast hours",
        FrameKind.OFFLINE: "Camera offline",
        FrameKind.ENDED: "Stream ended",
    }
)


@dataclass(frozen=True)
class Mask:
    """A polygon to black out, in fractions of the image's width and height (0..1)."""

    points: tuple[Point, ...]

    def __post_init__(self) -> None:
        if len(self.points) < 3:
            raise ValueError("a mask needs at least three points")
        if not all(0 <= x <= 1 and 0 <= y <= 1 for x, y in self.points):
            raise ValueError("mask points are fractions of the image, between 0 and 1")

    def pixels(self, width: int, height: int) -> npt.NDArray[np.int32]:
        return np.array(
            [(round(x * (width - 1)), round(y * (height - 1))) for x, y in self.points],
            dtype=np.int32,
        )


@dataclass(frozen=True)
class PipelineConfig:
    school: str
    room: str
    timezone: str = "Europe/Paris"
    masks: tuple[Mask, ...] = ()
    jpeg_quality: int = 80
    card_size: tuple[int, int] = (640, 480)  # until the camera has given a frame
    card_texts: Mapping[FrameKind, str] = field(default_factory=lambda: DEFAULT_CARD_TEXTS)

    def __post_init__(self) -> None:
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("JPEG quality is between 1 and 100")
        ZoneInfo(self.timezone)  # refuse an unknown zone now rather than on the first frame


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One JPEG, already framed as a multipart part; `jpeg` is the image alone."""

    kind: FrameKind
    part: bytes
    jpeg_start: int
    captured_at: datetime

    @property
    def jpeg(self) -> bytes:
        return self.part[self.jpeg_start : -2]


class Pipeline:
    """Turns the frames of one camera into encoded frames; `live` is for one thread only."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self._zone = ZoneInfo(config.timezone)
        self._label = _ascii(f"{config.school} - {config.room}")
        self._size = config.card_size
        self._masks: tuple[tuple[int, int], list[npt.NDArray[np.int32]]] | None = None
        self._lock = threading.Lock()
        self._cards: dict[FrameKind, tuple[int, EncodedFrame]] = {}

    def live(self, frame: Frame) -> EncodedFrame:
        """Mask, watermark and encode a camera frame; draws on `frame.image` in place."""
        image = frame.image
        height, width = image.shape[:2]
        self._size = (width, height)
        self._apply_masks(image, width, height)
        self._watermark(image, frame.captured_at)
        return self._encode(FrameKind.LIVE, image, frame.captured_at)

    def card(self, kind: FrameKind, at: datetime) -> EncodedFrame:
        """The card for `kind` at time `at`, drawn again only when the second changes."""
        second = int(at.timestamp())
        with self._lock:
            cached = self._cards.get(kind)
            if cached is not None and cached[0] == second:
                return cached[1]
        encoded = self._encode(kind, self._draw_card(kind, at), at)
        with self._lock:
            self._cards[kind] = (second, encoded)
        return encoded

    def _apply_masks(self, image: Image, width: int, height: int) -> None:
        if not self.config.masks:
            return
        if self._masks is None or self._masks[0] != (width, height):
            polygons = [m.pixels(width, height) for m in self.config.masks]
            self._masks = ((width, height), polygons)
        polygons = self._masks[1]
        cv2.fillPoly(image, polygons, (0, 0, 0))
        # A black outline too, so rounding never leaves a sliver of the hidden area.
        cv2.polylines(image, polygons, isClosed=True, color=(0, 0, 0), thickness=3)

    def _watermark(self, image: Image, at: datetime) -> None:
        height, width = image.shape[:2]
        scale = max(0.35, width / 1280)
        strip = int(34 * scale) + 4
        local = at.astimezone(self._zone)
        text = f"{self._label} - {local:%Y-%m-%d %H:%M:%S %Z}"
        cv2.rectangle(image, (0, height - strip), (width, height), (0, 0, 0), -1)
        cv2.putText(
            image,
            text,
            (6, height - strip // 3),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )

    def _draw_card(self, kind: FrameKind, at: datetime) -> Image:
        width, height = self._size
        image = np.full((height, width, 3), (48, 40, 36), dtype=np.uint8)
        title = _ascii(self.config.card_texts.get(kind, kind.value))
        scale = max(0.5, width / 640)
        (tw, th), _ = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        origin = (max(4, (width - tw) // 2), (height + th) // 2)
        cv2.putText(
            image,
            title,
            origin,
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (235, 235, 235),
            2,
            cv2.LINE_AA,
        )
        self._watermark(image, at)
        return image

    def _encode(self, kind: FrameKind, image: Image, at: datetime) -> EncodedFrame:
        params = [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality]
        try:
            ok, buf = cv2.imencode(".jpg", image, params)
        except cv2.error as exc:
            raise EncodeFailed(str(exc)) from exc
        if not ok:
            raise EncodeFailed("OpenCV returned no JPEG")
        jpeg = buf.tobytes()
        head = (
            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
            f"X-Frame-Kind: {kind.value}\r\nX-Captured-At: {at.timestamp():.3f}\r\n\r\n"
        ).encode()
        return EncodedFrame(kind, head + jpeg + b"\r\n", len(head), at)


def _ascii(text: str) -> str:
    """OpenCV's fonts draw ASCII only: 'École Jules-Ferry' becomes 'Ecole Jules-Ferry'."""
    folded = unicodedata.normalize("NFKD", text)
    return "".join(c for c in folded if c.isascii() and not unicodedata.combining(c))
