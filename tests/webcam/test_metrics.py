"""The cameras as monitoring sees them: viewers, capture state and dropped frames in
/metrics (the portal's for the cameras it captures, a node's for its own), and on the
staff health page."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hardware.cameras.base import CameraState
from school.models import Device
from tests.webcam import test_node
from tests.webcam.live import CameraSchool, Reader, login, stream_urls, watch
from tests.webcam.test_node import node_url, wait_until
from webcam.hub import Channel
from webcam.models import Camera
from webcam.pipeline import FrameKind, Pipeline, PipelineConfig
from webcam.policy import ALLOWED, Decision, Reason
from webcam.stream import mjpeg_stream

node = test_node.node  # a camera node serving the first room's camera, beside the portal


def scrape(base: str) -> Callable[..., float | None]:
    """Read `base`/metrics from this machine (no token configured: loopback may)."""
    response = httpx.get(f"{base}/metrics")
    assert response.status_code == 200, response.text
    families = list(text_string_to_metric_families(response.text))

    def value(metric: str, /, **labels: str) -> float | None:
        for family in families:
            for sample in family.samples:
                if sample.name == metric and all(
                        sample.labels.get(k) == v for k, v in labels.items()):
                    return sample.value
        return None

    return value


def test_slow_viewers_drops_are_counted_but_not_frames_under_a_card() -> None:
    channel = Channel("camera-1")
    pipeline = Pipeline(PipelineConfig(school="École", room="CP"))
    decision = [ALLOWED]
    frames = [pipeline.card(FrameKind.OFFLINE, datetime(2026, 11, 24, 9, minute, tzinfo=UTC))
              for minute in range(12)]  # each its own image

    async def scenario() -> None:
        stream = mjpeg_stream(channel=channel, pipeline=pipeline, check=lambda: decision[0],
                              recheck=0.01)
        channel.publish(frames[0])
        assert await anext(stream) is frames[0].part
        for frame in frames[1:4]:  # three published while the viewer was busy
            channel.publish(frame)
        assert await anext(stream) is frames[3].part
        assert channel.dropped == 2
        decision[0] = Decision(False, Reason.PAUSED)
        while await anext(stream) in (f.part for f in frames):
            pass  # the viewer now gets the 'paused' card
        for frame in frames[4:8]:
            channel.publish(frame)
        decision[0] = ALLOWED
        while (part := await anext(stream)) not in (f.part for f in frames):
            pass
        assert part is frames[7].part
        assert channel.dropped == 2  # what the card stood in for was not dropped
        for frame in frames[8:12]:
            channel.publish(frame)
        assert await anext(stream) is frames[11].part
        assert channel.dropped == 5
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_the_portal_shows_viewers_and_state_of_the_cameras_it_captures(
    base: str, equipped: CameraSchool,
) -> None:
    camera_id = str(equipped.cameras[0].id)
    parent = login(base, "parent@example.org")
    url = stream_urls(parent.get("/parent/cameras").text)[int(camera_id)]
    with watch(base, parent, url) as reader:
        reader.wait_for(FrameKind.LIVE)
        metrics = scrape(base)
        assert metrics("moulin_camera_viewers", camera=camera_id) == 1
        assert metrics("moulin_camera_state", camera=camera_id, state="live") == 1
        assert metrics("moulin_camera_state", camera=camera_id, state="offline") == 0
        assert metrics("moulin_camera_paused", camera=camera_id) == 0
        assert (metrics("moulin_camera_frames_published_total", camera=camera_id) or 0) > 0
        assert metrics("moulin_camera_frames_dropped_total", camera=camera_id) is not None
        staff = login(base, "office@example.org")
        page = staff.get("/staff/health?lang=en").text
        row = re.search(rf'<tr data-camera="{camera_id}">(.*?)</tr>', page, re.DOTALL)
        assert row is not None
        assert "this server" in row.group(1)
        assert re.search(r'class="num viewers">1<', row.group(1))
        assert ">live<" in row.group(1)
    wait_until(lambda: scrape(base)("moulin_camera_viewers", camera=camera_id) == 0)
    # Through a reverse proxy on this machine, for a client elsewhere: refused.
    assert httpx.get(f"{base}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}
                     ).status_code == 403
    parent.close()
    staff.close()


def test_a_node_reports_its_cameras_to_the_health_page_and_its_own_metrics(
    base: str, node: tuple[str, int, str], engine: Engine,
) -> None:
    node_base, camera_id, _ = node

    def reported() -> tuple[str | None, bool]:
        with Session(engine) as session:
            camera = session.get(Camera, camera_id)
            assert camera is not None
            assert camera.node_device_id is not None
            device = session.get(Device, camera.node_device_id)
            assert device is not None
            return camera.capture_state, device.last_seen_at is not None

    wait_until(lambda: reported() == (CameraState.LIVE.value, True))
    staff = login(base, "office@example.org")
    page = staff.get("/staff/health?lang=en").text
    row = re.search(rf'<tr data-camera="{camera_id}">(.*?)</tr>', page, re.DOTALL)
    assert row is not None
    assert "node-1" in row.group(1)
    assert ">live<" in row.group(1)
    assert re.search(r'<td>node-1</td><td class="contact"><span class="credit">Live</span>',
                     page)
    parent = login(base, "parent@example.org")
    with Reader(node_base, node_url(parent, node_base, camera_id), cookie=None) as reader:
        reader.start().wait_for(FrameKind.LIVE)
        metrics = scrape(node_base)
        assert metrics("moulin_camera_viewers", camera=str(camera_id)) == 1
        assert metrics("moulin_camera_state", camera=str(camera_id), state="live") == 1
        # The portal no longer captures it: its own metrics leave it to the node.
        assert scrape(base)("moulin_camera_viewers", camera=str(camera_id)) is None
    deadline = time.monotonic() + 5
    while scrape(node_base)("moulin_camera_viewers", camera=str(camera_id)) != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    staff.close()
    parent.close()
