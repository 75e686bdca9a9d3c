"""What every camera driver offers: a `CameraSource` protocol, its state, frames, errors.

Errors raised by camera drivers::

    CameraError
    ├── CameraUnavailable   the camera cannot be opened or stopped giving frames;
    │                       the driver will try again (see `retry_in`)
    ├── CameraClosed        the source was closed by its owner; it will not come back
    └── InvalidCameraSource the configured address cannot name a camera

Library exceptions (OpenCV's `cv2.error`, a `False` from `VideoCapture.read`) never
leave a driver: they become one of these.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from hardware.errors import HardwareError

Image = npt.NDArray[np.uint8]
"""A BGR image, height × width × 3, as OpenCV gives it."""


class CameraState(enum.StrEnum):
    LIVE = "live"  # the last read gave a frame
    RECONNECTING = "reconnecting"  # failing for a short while; retrying
    OFFLINE = "offline"  # never opened, closed, or failing for long; still retrying unless closed


@dataclass(frozen=True, slots=True)
class Frame:
    """One image as it came off the camera, with the moment it was captured."""

    image: Image
    captured_at: datetime  # aware, UTC
    sequence: int  # counts up from 1 for each source, across reconnections


class CameraError(HardwareError):
    """Base of every error a camera driver raises."""


class CameraUnavailable(CameraError):
    def __init__(self, message: str, *, retry_in: float = 0.0) -> None:
        super().__init__(message)
        self.retry_in = retry_in  # seconds until the driver will try the camera again


class CameraClosed(CameraError):
    pass


class InvalidCameraSource(CameraError):
    pass


@runtime_checkable
class CameraSource(Protocol):
    """A camera that can be read frame after frame from one thread.

    `read` blocks until the next frame (at most about the driver's read timeout) and
    raises `CameraUnavailable` instead of blocking through an outage, so its caller can
    show an 'offline' card and keep going; the driver reconnects by itself on later reads.
    `close` may be called from another thread.
    """

    @property
    def state(self) -> CameraState: ...

    @property
    def name(self) -> str:
        """A label for logs and pages; never holds credentials."""
        ...

    def read(self) -> Frame: ...

    def close(self) -> None: ...
