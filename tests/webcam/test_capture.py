"""The capture worker with a scripted camera: cards on failure, pause, clean shutdown."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from hardware.cameras.base import CameraClosed, CameraState, CameraUnavailable, Frame
from webcam.capture import CaptureWorker
from webcam.hub import Channel
from webcam.pipeline import EncodedFrame, FrameKind, Pipeline, PipelineConfig

AT = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


class ScriptedCamera:
    """A camera that plays a script: 'f' gives a frame, 'x' fails, then it is closed."""

    name = "scripted"

    def __init__(self, script: str, period: float = 0.01) -> None:
        self._script = iter(script)
        self._period = period
        self.state = CameraState.OFFLINE
        self.closed = threading.Event()
        self._sequence = 0

    def read(self) -> Frame:
        time.sleep(self._period)
        step = next(self._script, None)
        if step is None or self.closed.is_set():
            raise CameraClosed("end of script")
        if step == "x":
            self.state = CameraState.RECONNECTING
            raise CameraUnavailable("scripted failure", retry_in=0.01)
        self.state = CameraState.LIVE
        self._sequence += 1
        return Frame(np.zeros((48, 64, 3), np.uint8), AT, self._sequence)

    def close(self) -> None:
        self.closed.set()


class SpyChannel(Channel):
    """A channel that remembers the kind of everything published on it."""

    def __init__(self) -> None:
        super().__init__("spy")
        self.kinds: list[FrameKind] = []

    def publish(self, frame: EncodedFrame) -> None:
        self.kinds.append(frame.kind)
        super().publish(frame)


def kinds_published(source: ScriptedCamera) -> list[FrameKind]:
    channel = SpyChannel()
    pipeline = Pipeline(PipelineConfig(school="S", room="R"))
    worker = CaptureWorker(
        source=source, pipeline=pipeline, channel=channel, clock=lambda: AT, card_interval=0.0
    )
    with worker:
        assert source.closed.wait(5)
    return channel.kinds


def test_failures_publish_the_offline_card_and_capture_goes_on() -> None:
    source = ScriptedCamera("ffxxff")
    live, offline = FrameKind.LIVE, FrameKind.OFFLINE
    # The last card is the worker's own, when the script ends and the camera closes.
    assert kinds_published(source) == [live, live, offline, offline, live, live, offline]


def test_the_worker_closes_its_camera_when_stopped() -> None:
    source = ScriptedCamera("f" * 10_000)
    channel = Channel()
    pipeline = Pipeline(PipelineConfig(school="S", room="R"))
    with CaptureWorker(source=source, pipeline=pipeline, channel=channel):
        time.sleep(0.1)
    assert source.closed.is_set()
    assert channel.latest is not None
    assert channel.latest.frame.kind is FrameKind.OFFLINE  # no live frame left behind


def test_a_frame_the_pipeline_cannot_handle_is_never_published(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Pipeline):
        def live(self, frame: Frame) -> object:  # type: ignore[override]
            raise ValueError("cannot mask")

    channel = Channel()
    worker = CaptureWorker(
        source=ScriptedCamera("fff"),
        channel=channel,
        pipeline=Broken(PipelineConfig(school="S", room="R")),
    )
    with worker:
        time.sleep(0.2)
    assert channel.latest is not None
    assert channel.latest.frame.kind is FrameKind.OFFLINE
    assert "pipeline failed" in caplog.text


def test_while_paused_only_the_paused_card_is_published() -> None:
    source = ScriptedCamera("f" * 50, period=0.005)
    channel = SpyChannel()
    pipeline = Pipeline(PipelineConfig(school="S", room="R"))
    worker = CaptureWorker(source=source, pipeline=pipeline, channel=channel)
    worker.pause()
    with worker:
        assert source.closed.wait(5)
    assert set(channel.kinds) == {FrameKind.PAUSED}  # even the closing card


def test_a_worker_starts_once() -> None:
    worker = CaptureWorker(
        source=ScriptedCamera(""),
        channel=Channel(),
        pipeline=Pipeline(PipelineConfig(school="S", room="R")),
    )
    with worker, pytest.raises(RuntimeError, match="already"):
        worker.start()
