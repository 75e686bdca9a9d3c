"""The whole path on loopback: mock IP camera → OpenCV → capture → pipeline → hub → viewers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import pytest

from firmware_mocks.camera_scene import polygon_pixels
from firmware_mocks.ip_camera import IPCamera
from hardware.cameras.base import CameraState
from tests.webcam.conftest import CAMERA_ID, HIDDEN, Sources, camera_config
from tests.webcam.helpers import Watcher, decode
from webcam.errors import AccessRefused, UnknownCamera
from webcam.pipeline import FrameKind
from webcam.policy import ALLOWED, Decision, Reason
from webcam.service import CameraService
from webcam.stream import CLOSING


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def allow() -> Decision:
    return ALLOWED


async def watching(
    service: CameraService, count: int, seconds: float, check: Callable[[], Decision] = allow
) -> list[Watcher]:
    watchers = [Watcher() for _ in range(count)]
    tasks = [asyncio.create_task(w.run(service.stream(CAMERA_ID, check))) for w in watchers]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return watchers


def magenta_in(image: np.ndarray, region: np.ndarray) -> int:
    b, g, r = (image[..., i].astype(int) for i in range(3))
    vivid = (b > 150) & (r > 150) & (g < 110)
    return int((vivid & region).sum())


def hidden_region(width: int, height: int) -> np.ndarray:
    import cv2

    region = np.zeros((height, width), np.uint8)
    cv2.fillPoly(region, [polygon_pixels(HIDDEN, width, height)], 1)
    return region.astype(bool)


def test_the_camera_is_opened_once_whatever_the_number_of_viewers(
    running: CameraService, mock_camera: IPCamera, sources: Sources
) -> None:
    async def scenario() -> None:
        watchers = await watching(running, 6, 1.5)
        assert all(sum(p.kind is FrameKind.LIVE for p in w.parts) >= 5 for w in watchers)
        assert running.viewers(CAMERA_ID) == 0

    run(scenario)
    assert len(sources.opened) == 1
    assert sources.opened[0].opens == 1
    assert mock_camera.connections == 1


def test_no_pixel_of_a_masked_area_ever_reaches_a_viewer(
    running: CameraService, mock_camera: IPCamera
) -> None:
    region = hidden_region(320, 240)

    async def scenario() -> list[Watcher]:
        viewers = asyncio.create_task(watching(running, 3, 3.0))
        await asyncio.sleep(1.0)
        mock_camera.drop()  # cards and reconnection frames are checked too
        return await viewers

    watchers = asyncio.run(scenario())
    parts = [p for w in watchers for p in w.parts]
    assert sum(p.kind is FrameKind.LIVE for p in parts) >= 30
    assert {FrameKind.LIVE, FrameKind.OFFLINE} <= {p.kind for p in parts}
    leaks = [i for i, p in enumerate(parts) if magenta_in(decode(p.jpeg), region)]
    assert leaks == []


def test_the_mask_test_would_see_a_leak(service: CameraService, mock_camera: IPCamera) -> None:
    service.start(camera_config(mock_camera.url, masked=False))

    async def scenario() -> None:
        (watcher,) = await watching(service, 1, 1.0)
        live = [p for p in watcher.parts if p.kind is FrameKind.LIVE]
        assert live
        assert all(magenta_in(decode(p.jpeg), hidden_region(320, 240)) > 1000 for p in live)

    run(scenario)


def test_a_slow_viewer_does_not_slow_the_others(running: CameraService) -> None:
    channel = running.hub.channel(CAMERA_ID)

    async def scenario() -> None:
        await watching(running, 1, 1.0)  # until the camera is live
        before = channel.latest.sequence if channel.latest else 0
        slow = Watcher()
        fast = [Watcher(), Watcher()]
        tasks = [asyncio.create_task(slow.run(running.stream(CAMERA_ID, allow), every=0.5))]
        tasks += [asyncio.create_task(w.run(running.stream(CAMERA_ID, allow))) for w in fast]
        await asyncio.sleep(3.0)
        published = (channel.latest.sequence if channel.latest else 0) - before
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert published >= 30
        assert len(slow.parts) <= published // 5  # it skipped frames...
        for watcher in fast:  # ...and the others did not
            assert len(watcher.parts) >= published * 0.8

    run(scenario)


@pytest.mark.parametrize("failure", ["stall", "drop", "stop"])
def test_a_failing_camera_gives_the_offline_card_then_live_video(
    running: CameraService, mock_camera: IPCamera, failure: str
) -> None:
    async def scenario() -> None:
        watcher = Watcher()
        task = asyncio.create_task(watcher.run(running.stream(CAMERA_ID, allow)))
        await watcher.wait_for(FrameKind.LIVE)
        mark = len(watcher.parts)
        getattr(mock_camera, failure)()
        await watcher.wait_for(FrameKind.OFFLINE, after=mark)
        assert running.state(CAMERA_ID) is not CameraState.LIVE
        await asyncio.sleep(1.0)
        mark = len(watcher.parts)
        mock_camera.resume()
        await watcher.wait_for(FrameKind.LIVE, after=mark, timeout=8)
        assert running.state(CAMERA_ID) is CameraState.LIVE
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run(scenario)


def test_pause_reaches_a_running_stream_within_a_second(running: CameraService) -> None:
    async def scenario() -> None:
        watcher = Watcher()
        task = asyncio.create_task(watcher.run(running.stream(CAMERA_ID, allow)))
        await watcher.wait_for(FrameKind.LIVE)
        loop = asyncio.get_running_loop()
        paused_at, mark = loop.time(), len(watcher.parts)
        running.pause(CAMERA_ID)
        assert await watcher.wait_for(FrameKind.PAUSED, after=mark) - paused_at < 1.0
        await asyncio.sleep(1.5)
        assert set(watcher.kinds_since(mark)) == {FrameKind.PAUSED}
        running.resume(CAMERA_ID)
        await watcher.wait_for(FrameKind.LIVE, after=len(watcher.parts))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run(scenario)


class Switch:
    """A policy answer a test can change while the stream runs."""

    def __init__(self) -> None:
        self.decision = ALLOWED

    def __call__(self) -> Decision:
        return self.decision


@pytest.mark.parametrize(
    ("reason", "card"),
    [
        (Reason.PAUSED, FrameKind.PAUSED),
        (Reason.OUTSIDE_HOURS, FrameKind.OUTSIDE_HOURS),
        (Reason.CLOSED_DAY, FrameKind.OUTSIDE_HOURS),
    ],
)
def test_a_refusal_a_card_explains_swaps_the_video_within_a_second(
    running: CameraService, reason: Reason, card: FrameKind
) -> None:
    switch = Switch()

    async def scenario() -> None:
        watcher = Watcher()
        task = asyncio.create_task(watcher.run(running.stream(CAMERA_ID, switch)))
        await watcher.wait_for(FrameKind.LIVE)
        loop = asyncio.get_running_loop()
        refused_at, mark = loop.time(), len(watcher.parts)
        switch.decision = Decision.refuse(reason)
        assert await watcher.wait_for(card, after=mark) - refused_at < 1.0
        later = len(watcher.parts)
        await asyncio.sleep(1.2)
        assert set(watcher.kinds_since(later)) == {card}
        switch.decision = ALLOWED
        await watcher.wait_for(FrameKind.LIVE, after=len(watcher.parts))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run(scenario)


@pytest.mark.parametrize(
    "reason",
    [
        Reason.GUARDIANSHIP_ENDED,
        Reason.CONSENT_MISSING,
        Reason.SESSION_EXPIRED,
        Reason.NOT_ENROLLED,
    ],
)
def test_other_refusals_end_the_stream_within_a_second(
    running: CameraService, reason: Reason
) -> None:
    switch = Switch()

    async def scenario() -> None:
        stream = running.stream(CAMERA_ID, switch)
        chunks: list[bytes] = []
        loop = asyncio.get_running_loop()
        refused_at = 0.0
        async for chunk in stream:
            chunks.append(chunk)
            if len(chunks) == 5:
                switch.decision, refused_at = Decision.refuse(reason), loop.time()
        assert loop.time() - refused_at < 1.0
        assert chunks[-1] == CLOSING
        assert b"X-Frame-Kind: ended" in chunks[-2]
        assert running.viewers(CAMERA_ID) == 0

    run(scenario)


def test_snapshots(running: CameraService) -> None:
    async def scenario() -> None:
        image = decode(await running.snapshot(CAMERA_ID, allow))
        assert image.shape == (240, 320, 3)
        paused = await running.snapshot(CAMERA_ID, lambda: Decision.refuse(Reason.PAUSED))
        assert paused.startswith(b"\xff\xd8")
        with pytest.raises(AccessRefused) as refused:
            await running.snapshot(CAMERA_ID, lambda: Decision.refuse(Reason.NOT_GUARDIAN))
        assert refused.value.decision.reason is Reason.NOT_GUARDIAN

    run(scenario)


def test_a_camera_not_served_here_is_unknown(running: CameraService) -> None:
    with pytest.raises(UnknownCamera):
        running.stream(99, allow)


def test_a_camera_that_never_answers_shows_the_offline_card(service: CameraService) -> None:
    service.start(camera_config("http://127.0.0.1:9/video.mjpg"))

    async def scenario() -> None:
        (watcher,) = await watching(service, 1, 1.0)
        assert watcher.parts
        assert {p.kind for p in watcher.parts} == {FrameKind.OFFLINE}

    run(scenario)
    assert service.state(CAMERA_ID) is not CameraState.LIVE


def test_a_service_started_paused_never_shows_live_video(
    service: CameraService, mock_camera: IPCamera
) -> None:
    service.start(camera_config(mock_camera.url), paused=True)

    async def scenario() -> None:
        (watcher,) = await watching(service, 1, 1.5)
        assert {p.kind for p in watcher.parts} == {FrameKind.PAUSED}

    run(scenario)
    deadline = time.monotonic() + 2
    while service.state(CAMERA_ID) is not CameraState.LIVE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.is_paused(CAMERA_ID)
