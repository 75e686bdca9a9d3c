"""A camera node's report to the database, for the portal's staff health page: the node
was seen now, and each of its cameras is live, reconnecting or offline.

Written when a camera's state changes and otherwise every `every` seconds, so that the
page can tell a node that went silent (`school.device_reports.STALE_AFTER`).
"""

from __future__ import annotations

import time

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from hardware.cameras.base import CameraState
from school.clock import Clock
from school.models import Device
from webcam.errors import UnknownCamera
from webcam.models import Camera
from webcam.service import CameraService

EVERY = 30.0  # seconds


class Heartbeat:
    def __init__(self, engine: Engine, clock: Clock, every: float = EVERY) -> None:
        self._engine, self._clock, self._every = engine, clock, every
        self._written: dict[int, CameraState] | None = None
        self._written_at = 0.0  # time.monotonic()

    def beat(self, device_id: int, service: CameraService) -> None:
        states = {}
        for camera_id in service.camera_ids:
            try:
                states[camera_id] = service.state(camera_id)
            except UnknownCamera:  # stopped meanwhile
                continue
        due = time.monotonic() - self._written_at >= self._every
        if states == self._written and not due:
            return
        now = self._clock()
        with Session(self._engine) as session:
            session.exec(update(Device).where(col(Device.id) == device_id)
                         .values(last_seen_at=now))
            for camera_id, state in states.items():
                session.exec(update(Camera).where(col(Camera.id) == camera_id)
                             .values(capture_state=state.value, capture_state_at=now))
            session.commit()
        self._written, self._written_at = states, time.monotonic()
