"""The OpenCV camera driver against the mock IP camera over loopback, and a looping file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import cv2
import numpy as np
import pytest

from firmware_mocks.ip_camera import IPCamera
from hardware.cameras import open_camera
from hardware.cameras.base import (
    CameraClosed,
    CameraSource,
    CameraState,
    CameraUnavailable,
    InvalidCameraSource,
)
from hardware.cameras.opencv import OpenCVCamera, SourceKind, Timing, parse_source, redact

FAST = Timing(
    open_timeout=2, read_timeout=0.5, backoff_initial=0.1, backoff_max=0.4, offline_after=0.6
)


@pytest.fixture
def mock_camera() -> Iterator[IPCamera]:
    with IPCamera(width=160, height=120, fps=20) as cam:
        yield cam


@pytest.fixture
def driver(mock_camera: IPCamera) -> Iterator[OpenCVCamera]:
    cam = OpenCVCamera(mock_camera.url, timing=FAST)
    yield cam
    cam.close()


def read_until_live(cam: OpenCVCamera, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            cam.read()
            return
        except CameraUnavailable as exc:
            time.sleep(exc.retry_in)
    raise AssertionError("the camera never came back")


def failure(cam: OpenCVCamera) -> CameraUnavailable:
    """The error of the first read that fails (frames already buffered are read first)."""
    for _ in range(100):
        try:
            cam.read()
        except CameraUnavailable as exc:
            return exc
    raise AssertionError("the camera kept giving frames")


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        (0, SourceKind.USB),
        ("usb:2", SourceKind.USB),
        ("rtsp://cam.example/stream", SourceKind.RTSP),
        ("http://127.0.0.1:8080/video.mjpg", SourceKind.HTTP),
        ("https://cam.example/video.mjpg", SourceKind.HTTP),
    ],
)
def test_sources_are_recognised(source: int | str, kind: SourceKind) -> None:
    assert parse_source(source).kind is kind


def test_a_video_file_is_a_source(tmp_path: Path) -> None:
    clip = tmp_path / "clip.avi"
    clip.write_bytes(b"")
    assert parse_source(clip).kind is SourceKind.FILE
    assert parse_source(f"file:{clip}").kind is SourceKind.FILE


@pytest.mark.parametrize("source", ["ftp://cam.example/x", "/no/such/clip.mp4"])
def test_unusable_sources_are_refused(source: str) -> None:
    with pytest.raises(InvalidCameraSource):
        parse_source(source)


def test_credentials_never_appear_in_the_name() -> None:
    cam = OpenCVCamera("rtsp://admin:s3cret@10.0.0.9:554/live")
    assert "s3cret" not in cam.name
    assert "admin" not in cam.name
    assert cam.name == "rtsp://***@10.0.0.9:554/live"
    assert redact("http://cam/video.mjpg") == "http://cam/video.mjpg"


def test_a_login_in_the_query_never_appears_in_the_name() -> None:
    cam = OpenCVCamera("http://10.0.0.9/video.cgi?user=admin&pwd=s3cret&res=hd")
    assert cam.name == "http://10.0.0.9/video.cgi?user=***&pwd=***&res=***"


def test_it_is_a_camera_source(driver: OpenCVCamera) -> None:
    assert isinstance(driver, CameraSource)
    assert isinstance(open_camera("http://127.0.0.1:1/x.mjpg"), OpenCVCamera)


def test_reads_frames_with_their_capture_time(driver: OpenCVCamera) -> None:
    states = [driver.state]  # not opened yet
    frames = [driver.read() for _ in range(3)]
    states.append(driver.state)
    assert states == [CameraState.OFFLINE, CameraState.LIVE]
    assert [f.sequence for f in frames] == [1, 2, 3]
    assert frames[0].image.shape == (120, 160, 3)
    assert frames[0].captured_at.tzinfo is UTC
    assert frames[0].captured_at <= frames[1].captured_at <= frames[2].captured_at
    assert driver.opens == 1


def test_a_stall_becomes_unavailable_then_offline_then_live(
    driver: OpenCVCamera, mock_camera: IPCamera
) -> None:
    driver.read()
    mock_camera.stall()
    failure(driver)
    states = [driver.state]
    time.sleep(FAST.offline_after)
    failure(driver)
    states.append(driver.state)
    mock_camera.resume()
    read_until_live(driver)
    states.append(driver.state)
    assert states == [CameraState.RECONNECTING, CameraState.OFFLINE, CameraState.LIVE]
    assert driver.opens >= 2


def test_a_dropped_connection_is_reopened(driver: OpenCVCamera, mock_camera: IPCamera) -> None:
    driver.read()
    mock_camera.drop()
    failure(driver)
    read_until_live(driver)
    assert mock_camera.connections >= 2


def test_back_off_doubles_up_to_its_ceiling(driver: OpenCVCamera, mock_camera: IPCamera) -> None:
    mock_camera.stop()
    waits = []
    for _ in range(5):
        exc = failure(driver)
        waits.append(round(exc.retry_in, 2))
        time.sleep(exc.retry_in)
    assert waits == [0.1, 0.2, 0.4, 0.4, 0.4]


def test_while_waiting_it_does_not_touch_the_camera(
    driver: OpenCVCamera, mock_camera: IPCamera
) -> None:
    mock_camera.stop()
    failure(driver)
    mock_camera.resume()
    exc = failure(driver)  # still inside the back-off wait: no attempt made
    assert exc.retry_in <= FAST.backoff_initial
    assert mock_camera.connections == 0


def test_closed_camera_refuses_to_read(driver: OpenCVCamera) -> None:
    driver.read()
    driver.close()
    assert driver.state is CameraState.OFFLINE
    with pytest.raises(CameraClosed):
        driver.read()


def test_a_missing_usb_camera_is_unavailable() -> None:
    cam = OpenCVCamera("usb:63", timing=FAST)
    try:
        assert failure(cam).retry_in == FAST.backoff_initial
    finally:
        cam.close()


def test_a_video_file_plays_in_a_loop(tmp_path: Path) -> None:
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 100, (64, 48))
    for shade in (0, 80, 160, 240):
        writer.write(np.full((48, 64, 3), shade, dtype=np.uint8))
    writer.release()
    cam = OpenCVCamera(clip, timing=FAST)
    try:
        shades = [int(cam.read().image.mean()) for _ in range(9)]
    finally:
        cam.close()
    assert shades[:4] == pytest.approx([0, 80, 160, 240], abs=3)
    assert shades[4:8] == pytest.approx(shades[:4], abs=3)
    assert cam.opens == 1
