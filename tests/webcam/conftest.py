"""A mock IP camera on loopback and a camera service reading it through OpenCV; the
portal serving a small school with a mock camera in each room."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session

from firmware_mocks.camera_scene import Paint
from firmware_mocks.ip_camera import IPCamera
from hardware.cameras.opencv import OpenCVCamera, Timing
from parent_portal.app import create_app
from school.settings import Settings
from tests.conftest import FakeClock
from tests.factories import SmallSchool
from tests.webcam.live import CameraSchool, equip, serve
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


@pytest.fixture
def room_mocks() -> Iterator[list[IPCamera]]:
    """A mock camera for each room of the small school."""
    with IPCamera(width=320, height=240, fps=10) as cp, IPCamera(width=320, height=240,
                                                                    fps=10) as ce1:
        yield [cp, ce1]


@pytest.fixture
def equipped(session: Session, small_school: SmallSchool, room_mocks: list[IPCamera],
             settings: Settings) -> CameraSchool:
    return equip(session, small_school, room_mocks, settings.effective_secret_key())


@pytest.fixture
def portal_app(settings: Settings, engine: Engine, clock: FakeClock, sources: Sources,
               equipped: CameraSchool) -> FastAPI:
    return create_app(settings, engine, clock=clock, open_source=sources)


@pytest.fixture
def base(portal_app: FastAPI) -> Iterator[str]:
    with serve(portal_app) as url:
        yield url
