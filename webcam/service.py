"""The cameras one process serves, behind the few calls the web app and camera nodes need.

`CameraService` starts a capture worker per configured camera (each camera opened once),
and gives streams, snapshots, pause and resume, state and viewer counts by camera id. The
camera's address lives only in `CameraConfig.source`; nothing here returns it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType

from hardware.cameras import open_camera
from hardware.cameras.base import CameraSource, CameraState
from school.clock import Clock, utcnow
from webcam.capture import CaptureWorker
from webcam.errors import UnknownCamera
from webcam.hub import Hub
from webcam.pipeline import Pipeline, PipelineConfig
from webcam.stream import PolicyCheck, mjpeg_stream, snapshot

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CameraConfig:
    camera_id: int
    source: str = field(repr=False)  # may hold credentials: never logged, never shown
    pipeline: PipelineConfig


@dataclass
class _Running:
    config: CameraConfig
    pipeline: Pipeline
    worker: CaptureWorker


class CameraService:
    def __init__(
        self,
        *,
        open_source: Callable[[str], CameraSource] = open_camera,
        clock: Clock = utcnow,
        hub: Hub | None = None,
    ) -> None:
        self.hub = hub or Hub()
        self._open_source = open_source
        self._clock = clock
        self._lock = threading.Lock()
        self._cameras: dict[int, _Running] = {}

    def start(self, config: CameraConfig, *, paused: bool = False) -> None:
        """Start capturing `config`'s camera (replacing a running one with the same id)."""
        self.stop(config.camera_id)
        pipeline = Pipeline(config.pipeline)
        worker = CaptureWorker(
            source=self._open_source(config.source),
            pipeline=pipeline,
            channel=self.hub.channel(config.camera_id),
            clock=self._clock,
        )
        if paused:
            worker.pause()
        with self._lock:
            self._cameras[config.camera_id] = _Running(config, pipeline, worker)
        worker.start()
        logger.info("capturing camera %s", config.camera_id)

    def stop(self, camera_id: int) -> None:
        with self._lock:
            running = self._cameras.pop(camera_id, None)
        if running is not None:
            running.worker.stop()

    def close(self) -> None:
        for camera_id in list(self._cameras):
            self.stop(camera_id)

    def __enter__(self) -> CameraService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _get(self, camera_id: int) -> _Running:
        try:
            return self._cameras[camera_id]
        except KeyError:
            raise UnknownCamera(f"camera {camera_id} is not served here") from None

    @property
    def camera_ids(self) -> frozenset[int]:
        return frozenset(self._cameras)

    def pause(self, camera_id: int) -> None:
        self._get(camera_id).worker.pause()

    def resume(self, camera_id: int) -> None:
        self._get(camera_id).worker.resume()

    def is_paused(self, camera_id: int) -> bool:
        return self._get(camera_id).worker.paused

    def state(self, camera_id: int) -> CameraState:
        return self._get(camera_id).worker.state

    def viewers(self, camera_id: int) -> int:
        self._get(camera_id)
        return self.hub.channel(camera_id).viewers

    def stream(self, camera_id: int, check: PolicyCheck) -> AsyncIterator[bytes]:
        running = self._get(camera_id)
        return mjpeg_stream(
            channel=self.hub.channel(camera_id),
            pipeline=running.pipeline,
            check=check,
            clock=self._clock,
        )

    async def snapshot(self, camera_id: int, check: PolicyCheck) -> bytes:
        running = self._get(camera_id)
        return await snapshot(
            channel=self.hub.channel(camera_id),
            pipeline=running.pipeline,
            check=check,
            clock=self._clock,
        )
