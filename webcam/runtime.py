"""The cameras one process serves, kept in step with the database.

The portal serves every enabled camera that no camera node owns; `moulin camera-node`
serves the cameras it was started for. Either way `CameraRuntime.sync` reads the camera
records, starts a capture worker for each new camera, restarts one whose address, masks
or names changed, stops those gone, and applies the paused flag; it runs at start, after
each change made in this process, and every `sync_interval` seconds for changes made
elsewhere (another process, another node). A node also writes its live viewer counts
back, for the portal's 'on air' page.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hardware.cameras import open_camera
from hardware.cameras.base import CameraSource
from hardware.errors import HardwareError
from school.clock import Clock, utcnow
from school.models import Classroom, School
from webcam.heartbeat import Heartbeat
from webcam.models import Camera
from webcam.monitor import MAX_AGE, SESSION_IDLE, AccessMonitor
from webcam.pipeline import DEFAULT_CARD_TEXTS, FrameKind, Mask, PipelineConfig
from webcam.sealing import SourceUnreadable, unseal
from webcam.service import CameraConfig, CameraService
from webcam.snapshots import Snapshots
from webcam.viewlog import ViewLog

logger = logging.getLogger(__name__)

# OpenCV draws ASCII only; the pipeline folds accents away.
FRENCH_CARDS = MappingProxyType({
    FrameKind.PAUSED: "Diffusion en pause",
    FrameKind.OUTSIDE_HOURS: "Hors des heures de diffusion",
    FrameKind.OFFLINE: "Camera hors ligne",
    FrameKind.ENDED: "Fin de la diffusion",
})


SourceOpener = Callable[[str], CameraSource]


@dataclass(frozen=True)
class NodeRole:
    """This process is a camera node: it serves these cameras, when assigned to it."""

    device_id: int
    camera_ids: frozenset[int]


class CameraRuntime:
    """Capture service, access monitor and viewing log of one process, with their sync."""

    def __init__(
        self,
        *,
        engine: Engine,
        secret_key: str,
        clock: Clock = utcnow,
        open_source: SourceOpener | None = None,
        node: NodeRole | None = None,
        sync_interval: float = 2.0,
        max_age: float = MAX_AGE,
        capture: bool = True,
        session_idle: timedelta = SESSION_IDLE,
    ) -> None:
        self.engine = engine
        self.secret_key = secret_key
        self.clock = clock
        self.node = node
        self.capture = capture  # False: this process serves no camera (nodes do)
        self.service = CameraService(open_source=open_source or open_camera, clock=clock)
        self.monitor = AccessMonitor(engine, clock=clock, max_age=max_age,
                                     session_idle=session_idle)
        self.log = ViewLog(engine)
        self.snapshots = Snapshots()
        self._sync_interval = sync_interval
        self._keys: dict[int, str] = {}
        self._counts: dict[int, int] = {}
        self._heartbeat = Heartbeat(engine, clock)
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = threading.Lock()

    def start(self) -> CameraRuntime:
        """Start serving (once; later calls do nothing)."""
        with self._started:
            if self._thread is not None:
                return self
            self.log.start()
            self._sync_logged()
            self._thread = threading.Thread(target=self._loop, name="camera-sync", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()  # also makes any later sync (a request still in flight) do nothing
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._sync_lock:
            self.service.close()
        self.monitor.close()
        self.log.close()

    def _loop(self) -> None:
        while not self._stop.wait(self._sync_interval):
            self._sync_logged()

    def _sync_logged(self) -> None:
        try:
            self.sync()
        except Exception:  # a database outage must not stop the server: try again later
            logger.exception("camera sync failed; trying again shortly")

    def serves(self, camera_id: int) -> bool:
        return camera_id in self.service.camera_ids

    def viewers(self, camera_id: int) -> int | None:
        """Live viewers of a camera served here (streams, and snapshots still lit), or
        None when it is not served here."""
        if not self.serves(camera_id):
            return None
        return self.service.viewers(camera_id) + self.snapshots.viewers(camera_id, self.clock())

    def changed(self, camera_id: int | None = None) -> None:
        """Something about a camera (or every camera) changed in this process: apply now."""
        self.monitor.invalidate(camera_id)
        if self._thread is not None:
            self.sync()

    def sync(self) -> None:
        if not self.capture:
            return
        with self._sync_lock:  # reading and applying together: see `pause`
            if self._stop.is_set():  # closed: a request still in flight changes nothing
                return
            wanted = self._wanted()
            for camera_id in self.service.camera_ids - wanted.keys():
                logger.info("no longer serving camera %s", camera_id)
                self.service.stop(camera_id)
                self._keys.pop(camera_id, None)
            for camera_id, (camera, room, school) in wanted.items():
                self._apply(camera_id, camera, room, school)
        if self.node is not None:
            self._write_counts()
            self._heartbeat.beat(self.node.device_id, self.service)

    def _wanted(self) -> dict[int, tuple[Camera, Classroom, School]]:
        """The enabled cameras this process should serve, with their room and school."""
        query = (
            select(Camera, Classroom, School)
            .join(Classroom, col(Classroom.id) == Camera.classroom_id)
            .join(School, col(School.id) == Camera.school_id)
            .where(col(Camera.enabled))
        )
        if self.node is None:
            query = query.where(col(Camera.node_device_id).is_(None))
        else:
            query = query.where(Camera.node_device_id == self.node.device_id,
                                col(Camera.id).in_(self.node.camera_ids))
        with Session(self.engine) as session:
            return {camera.id or 0: (camera, room, school)
                    for camera, room, school in session.exec(query).all()}

    def _apply(self, camera_id: int, camera: Camera, room: Classroom, school: School) -> None:
        key = json.dumps([camera.source_sealed, camera.masks, camera.name, room.name,
                          school.name, school.timezone, school.locale])
        if self._keys.get(camera_id) != key:
            config = self._config(camera_id, camera, room, school)
            if config is None:
                self.service.stop(camera_id)
                return
            try:
                self.service.start(config, paused=camera.paused)
            except HardwareError:
                logger.error("camera %s has an unusable address; not started", camera_id)
                return
            self._keys[camera_id] = key
        elif self.service.is_paused(camera_id) != camera.paused:
            (self.service.pause if camera.paused else self.service.resume)(camera_id)

    def _config(
        self, camera_id: int, camera: Camera, room: Classroom, school: School
    ) -> CameraConfig | None:
        try:
            source = unseal(camera.source_sealed, self.secret_key)
            masks = tuple(Mask(tuple((x, y) for x, y in polygon)) for polygon in camera.masks)
        except (SourceUnreadable, ValueError, TypeError):
            # Fail closed: a camera whose masks cannot be applied is not shown at all.
            logger.error("camera %s: unreadable address or masks; not started", camera_id)
            return None
        pipeline = PipelineConfig(
            school=school.name, room=room.name, timezone=school.timezone, masks=masks,
            card_texts=FRENCH_CARDS if school.locale == "fr" else DEFAULT_CARD_TEXTS,
        )
        return CameraConfig(camera_id=camera_id, source=source, pipeline=pipeline)

    def pause(self, camera_id: int, paused: bool) -> None:
        """Apply a pause decided in this process at once (the database already says so).

        Taken under the sync lock: a sync that read the camera before the change was
        committed must not undo it, and one that starts afterwards reads it."""
        with self._sync_lock:
            if self.serves(camera_id):
                (self.service.pause if paused else self.service.resume)(camera_id)
        self.monitor.invalidate(camera_id)

    def _write_counts(self) -> None:
        counts = {cid: self.viewers(cid) or 0 for cid in self.service.camera_ids}
        changed = {cid: n for cid, n in counts.items() if self._counts.get(cid) != n}
        if not changed:
            return
        now = self.clock()
        with Session(self.engine) as session:
            for camera_id, count in changed.items():
                session.exec(update(Camera).where(col(Camera.id) == camera_id)
                             .values(live_viewers=count, live_viewers_at=now))
            session.commit()
        self._counts.update(changed)
