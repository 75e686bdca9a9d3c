"""Cameras behind one small interface (`base.CameraSource`); `open_camera` picks the driver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardware.cameras.base import CameraSource


def open_camera(source: int | str | Path, **options: Any) -> CameraSource:
    """The driver for `source` (see `hardware.cameras.opencv` for the forms it accepts).

    Drivers are imported here, on first use, so that importing `hardware` stays cheap.
    """
    from hardware.cameras.opencv import OpenCVCamera

    return OpenCVCamera(source, **options)
