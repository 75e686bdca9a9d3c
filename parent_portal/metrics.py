"""The portal's `GET /metrics` (see `school.metrics` for who may read it): the till API's
counters and latencies, the cameras this server captures, and from the database each
device's last contact and each till's reported queue and last sync.

Database-backed figures are read when scraped, so every server worker gives the same
ones; cameras captured by camera nodes are in those nodes' own `/metrics`.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy.engine import Engine
from sqlmodel import Session

import cardpay.metrics  # noqa: F401 - registers the till API's counters in this process
from school.clock import Clock
from school.device_reports import is_stale, live_devices
from school.metrics import metrics_endpoint
from school.models import DeviceKind
from webcam.metrics import CameraCollector
from webcam.runtime import CameraRuntime


class DeviceCollector:
    """Devices' last contact and tills' reports, from the database."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine, self._clock = engine, clock

    def collect(self) -> Iterator[Metric]:
        labels = ["school", "device", "name", "kind"]
        seen = GaugeMetricFamily("moulin_device_last_seen_timestamp_seconds",
                                 "When the device last contacted the server.", labels=labels)
        up = GaugeMetricFamily("moulin_device_up",
                               "1 when the device contacted the server in the last 2 minutes.",
                               labels=labels)
        queue = GaugeMetricFamily("moulin_till_queue_length",
                                  "Taps in the till's journal not yet sent, as it last reported.",
                                  labels=labels[:3])
        synced = GaugeMetricFamily("moulin_till_last_sync_timestamp_seconds",
                                   "When the till last heard from the server, as it reported.",
                                   labels=labels[:3])
        now = self._clock()
        with Session(self._engine) as session:
            devices = live_devices(session)
        for device, school in devices:
            values = [school.slug, str(device.id), device.name, device.kind.value]
            up.add_metric(values, 0.0 if is_stale(device.last_seen_at, now) else 1.0)
            if device.last_seen_at is not None:
                seen.add_metric(values, device.last_seen_at.timestamp())
            if device.kind is DeviceKind.TILL and device.reported_queue is not None:
                queue.add_metric(values[:3], device.reported_queue)
            if device.kind is DeviceKind.TILL and device.reported_sync_at is not None:
                synced.add_metric(values[:3], device.reported_sync_at.timestamp())
        yield from (up, seen, queue, synced)


def install(app: FastAPI) -> None:
    """Serve `/metrics` for `app` (after its settings, engine, clock and cameras are set)."""
    def collectors() -> list[DeviceCollector | CameraCollector]:
        runtime: CameraRuntime = app.state.cameras
        return [DeviceCollector(app.state.engine, app.state.clock),
                CameraCollector(runtime.service)]

    app.add_route("/metrics", metrics_endpoint(app.state.settings.metrics_token, collectors))
