"""The OpenCV camera driver: USB cameras, RTSP and HTTP-MJPEG IP cameras, looping video files.

| source      | written as                           | backend    | notes                     |
| ----------- | ------------------------------------ | ---------- | ------------------------- |
| USB camera  | `usb:0` (or the int 0)               | any (V4L2) | unplugged → retried       |
| RTSP camera | `rtsp://user:pass@host:554/stream`   | FFmpeg     | see RTSP transport below  |
| HTTP MJPEG  | `http://host/video.mjpg` (`https`)   | FFmpeg     | multipart/x-mixed-replace |
| video file  | `/path/clip.mp4`, `file:/path/clip`  | FFmpeg     | looped at its own fps     |

RTSP goes over FFmpeg's default transport; set `OPENCV_FFMPEG_CAPTURE_OPTIONS` to
`rtsp_transport;tcp` in the environment to force TCP (it applies to the whole process).

Opening and reading are bounded by timeouts (FFmpeg sources), so a stalled camera
becomes a `CameraUnavailable` rather than a hung thread. After a failure the driver waits
before trying again, doubling the wait up to a ceiling, and `read` raises
`CameraUnavailable` (with `retry_in`) during the wait instead of sleeping through it.
Credentials in a URL never appear in `name`, logs or errors.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import cv2

from hardware.cameras.base import (
    CameraClosed,
    CameraState,
    CameraUnavailable,
    Frame,
    Image,
    InvalidCameraSource,
)

logger = logging.getLogger(__name__)


class SourceKind(enum.StrEnum):
    USB = "usb"
    RTSP = "rtsp"
    HTTP = "http"
    FILE = "file"


@dataclass(frozen=True)
class Source:
    kind: SourceKind
    target: int | str  # device index, URL or file path

    @property
    def name(self) -> str:
        if self.kind is SourceKind.USB:
            return f"usb:{self.target}"
        return redact(str(self.target))


def redact(url: str) -> str:
    """The URL without its user, password or query values (cameras take their login as
    `?user=…&pwd=…` as often as in the address), for logs and pages."""
    parts = urlsplit(url)
    host = parts.netloc
    if parts.password is not None or parts.username is not None:
        host = "***@" + (parts.hostname or "")
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    query = "&".join(f"{name}=***" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


def parse_source(source: int | str | Path) -> Source:
    if isinstance(source, int):
        return Source(SourceKind.USB, source)
    text = str(source)
    scheme = urlsplit(text).scheme.lower()
    if scheme == "usb" and text[4:].isdigit():
        return Source(SourceKind.USB, int(text[4:]))
    if scheme in ("rtsp", "rtsps"):
        return Source(SourceKind.RTSP, text)
    if scheme in ("http", "https"):
        return Source(SourceKind.HTTP, text)
    path = Path(text.removeprefix("file:")) if scheme in ("file", "") else None
    if path is None:
        raise InvalidCameraSource(f"unsupported camera source: {redact(text)}")
    if not path.is_file():
        raise InvalidCameraSource(f"no such video file: {path}")
    return Source(SourceKind.FILE, str(path))


@dataclass(frozen=True)
class Timing:
    open_timeout: float = 5.0  # seconds
    read_timeout: float = 2.0
    backoff_initial: float = 0.5
    backoff_max: float = 10.0
    offline_after: float = 3.0  # failing this long turns RECONNECTING into OFFLINE


class OpenCVCamera:
    """A `CameraSource` reading one camera through `cv2.VideoCapture`; read from one thread."""

    def __init__(
        self,
        source: int | str | Path,
        *,
        timing: Timing | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._source = parse_source(source)
        self._timing = timing or Timing()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._cap: cv2.VideoCapture | None = None
        self._lock = threading.Lock()  # held while OpenCV works; `close` waits for it
        self._closed = threading.Event()
        self._state = CameraState.OFFLINE
        self._sequence = 0
        self._failing_since: float | None = None
        self._delay = 0.0
        self._next_attempt = 0.0
        self._period = 0.0  # files only: seconds between frames
        self._next_due = 0.0
        self.opens = 0  # how many times the camera was opened

    @property
    def state(self) -> CameraState:
        return self._state

    @property
    def name(self) -> str:
        return self._source.name

    @property
    def kind(self) -> SourceKind:
        return self._source.kind

    def read(self) -> Frame:
        with self._lock:
            if self._closed.is_set():
                raise CameraClosed(f"{self.name} is closed")
            cap = self._cap if self._cap is not None else self._connect()
            image = self._grab(cap)
            self._sequence += 1
            if self._state is not CameraState.LIVE:
                logger.info("camera %s is live", self.name)
            self._state, self._failing_since = CameraState.LIVE, None
            frame = Frame(image=image, captured_at=self._clock(), sequence=self._sequence)
        self._pace()
        return frame

    def close(self) -> None:
        self._closed.set()
        timeout = self._timing.open_timeout + self._timing.read_timeout + 1
        if self._lock.acquire(timeout=timeout):
            try:
                self._release()
            finally:
                self._lock.release()
        self._state = CameraState.OFFLINE

    def _connect(self) -> cv2.VideoCapture:
        wait = self._next_attempt - time.monotonic()
        if wait > 0:
            self._update_failing_state()
            raise CameraUnavailable(f"{self.name}: waiting to reconnect", retry_in=wait)
        try:
            cap = self._open()
        except cv2.error as exc:
            self._fail(f"OpenCV could not open it ({exc.__class__.__name__})")
        if not cap.isOpened():
            cap.release()
            self._fail("could not be opened")
        self.opens += 1
        self._cap = cap
        if self._source.kind is SourceKind.FILE:
            fps = cap.get(cv2.CAP_PROP_FPS)
            self._period = 1.0 / fps if math.isfinite(fps) and 1 <= fps <= 120 else 0.1
            self._next_due = time.monotonic()
        return cap

    def _open(self) -> cv2.VideoCapture:
        if self._source.kind is SourceKind.USB:
            return cv2.VideoCapture(int(self._source.target), cv2.CAP_ANY)
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self._timing.open_timeout * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self._timing.read_timeout * 1000),
        ]
        return cv2.VideoCapture(str(self._source.target), cv2.CAP_FFMPEG, params)

    def _grab(self, cap: cv2.VideoCapture) -> Image:
        try:
            ok, image = cap.read()
            if not ok and self._source.kind is SourceKind.FILE:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # the end of the clip: play it again
                ok, image = cap.read()
        except cv2.error as exc:
            self._fail(f"OpenCV failed to read ({exc.__class__.__name__})")
        if not ok or image is None or image.ndim != 3:
            self._fail("gave no frame")
        return image.astype("uint8", copy=False)

    def _fail(self, reason: str) -> NoReturn:
        self._release()
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since, self._delay = now, self._timing.backoff_initial
            logger.warning("camera %s %s; reconnecting", self.name, reason)
        else:
            self._delay = min(self._delay * 2, self._timing.backoff_max)
        self._next_attempt = now + self._delay
        self._update_failing_state()
        raise CameraUnavailable(f"{self.name} {reason}", retry_in=self._delay)

    def _update_failing_state(self) -> None:
        since = self._failing_since if self._failing_since is not None else time.monotonic()
        failing_for = time.monotonic() - since
        offline = failing_for >= self._timing.offline_after
        state = CameraState.OFFLINE if offline else CameraState.RECONNECTING
        if state is CameraState.OFFLINE and self._state is not CameraState.OFFLINE:
            logger.warning("camera %s is offline", self.name)
        self._state = state

    def _release(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def _pace(self) -> None:
        """Files would be read as fast as the disk allows: hold each frame to the clip's rate."""
        if self._period:
            self._next_due = max(self._next_due + self._period, time.monotonic() - self._period)
            self._closed.wait(max(0.0, self._next_due - time.monotonic()))
