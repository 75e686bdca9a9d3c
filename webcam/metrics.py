"""Prometheus metrics of the cameras this process serves, read from the running capture
service when scraped (nothing is counted on the frame path but the frames slow viewers
skip, kept on each hub channel).

A camera served by a camera node appears in that node's `/metrics`, not the portal's.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from hardware.cameras.base import CameraState
from webcam.errors import UnknownCamera
from webcam.service import CameraService


class CameraCollector:
    """Viewers, capture state, pause and frame counts of each camera `service` runs."""

    def __init__(self, service: CameraService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        viewers = GaugeMetricFamily(
            "moulin_camera_viewers", "Streams open now, per camera.", labels=["camera"])
        state = GaugeMetricFamily(
            "moulin_camera_state",
            "Capture state per camera: 1 for the current state (live, reconnecting, offline).",
            labels=["camera", "state"])
        paused = GaugeMetricFamily(
            "moulin_camera_paused", "1 while staff have paused the camera.", labels=["camera"])
        published = CounterMetricFamily(
            "moulin_camera_frames_published",
            "Frames published to viewers, live frames and cards.", labels=["camera"])
        dropped = CounterMetricFamily(
            "moulin_camera_frames_dropped",
            "Frames viewers skipped because they read slower than the camera.",
            labels=["camera"])
        service = self._service
        for camera_id in sorted(service.camera_ids):
            try:
                now, watching = service.state(camera_id), service.viewers(camera_id)
                is_paused = service.is_paused(camera_id)
            except UnknownCamera:  # stopped while we were reading
                continue
            channel = service.hub.channel(camera_id)
            label = str(camera_id)
            viewers.add_metric([label], watching)
            for each in CameraState:
                state.add_metric([label, each.value], 1.0 if each is now else 0.0)
            paused.add_metric([label], 1.0 if is_paused else 0.0)
            latest = channel.latest
            published.add_metric([label], latest.sequence if latest else 0)
            dropped.add_metric([label], channel.dropped)
        yield from (viewers, state, paused, published, dropped)
