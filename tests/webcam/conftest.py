"""A mock IP camera on loopback and a camera service reading it through OpenCV."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from firmware_mocks.camera_scene import Paint
from firmware_mocks.ip_camera import IPCamera
from hardware.cameras.opencv import OpenCVCamera, Timing
from webcam.pipeline import Mask, PipelineConfig
from webcam.service import CameraConfig, CameraService

FAST = Timing(
    open_timeout=2, read_timeout=0.5, backoff_initial=0.1, backoff_max=0.5, offline_after=0.5
)
CAMERA_ID = 1
# A patch of the room (a changing area, say) that no parent may ever see.
HIDDEN = ((0.55, 0.05), (0.95, 0.05), (0.95, 0.55), (0.7, 0.7), (0.55, 0.55))
MAGENTA = (255, 0, 255)


class Sources:
    """Opens cameras for the service and remembers them, to count how often each opened."""

    def __init__(self) -> None:
        self.opened: list[OpenCVCamera] = []

    def __call__(self, source: str) -> OpenCVCamera:
        camera = OpenCVCamera(source, timing=FAST)
        self.opened.append(camera)
        return camera


@pytest.fixture
def mock_camera() -> Iterator[IPCamera]:
    with IPCamera(width=320, height=240, fps=20, paint=(Paint(HIDDEN, MAGENTA),)) as cam:
        yield cam


@pytest.fixture
def sources() -> Sources:
    return Sources()


@pytest.fixture
def service(sources: Sources) -> Iterator[CameraService]:
    with CameraService(open_source=sources) as svc:
        yield svc


def camera_config(url: str, *, masked: bool = True) -> CameraConfig:
    masks = (Mask(HIDDEN),) if masked else ()
    pipeline = PipelineConfig(school="École du Moulin", room="Petite section", masks=masks)
    return CameraConfig(camera_id=CAMERA_ID, source=url, pipeline=pipeline)


@pytest.fixture
def running(service: CameraService, mock_camera: IPCamera) -> CameraService:
    service.start(camera_config(mock_camera.url))
    return service
