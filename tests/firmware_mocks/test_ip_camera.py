"""The mock IP camera, checked from the outside: over HTTP on loopback, as a camera would be."""

from __future__ import annotations

import time
from collections.abc import Iterator

import cv2
import httpx
import numpy as np
import pytest

from firmware_mocks.camera_scene import Paint
from firmware_mocks.ip_camera import IPCamera, Mode

MAGENTA = (255, 0, 255)


@pytest.fixture
def camera() -> Iterator[IPCamera]:
    with IPCamera(width=160, height=120, fps=20) as cam:
        yield cam


class Parts:
    """Reads the JPEGs of a multipart/x-mixed-replace body, part after part."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.iter_bytes()
        self._buffer = b""

    def take(self, count: int) -> list[bytes]:
        parts: list[bytes] = []
        while len(parts) < count:
            part = self._cut()
            if part is None:
                self._buffer += next(self._chunks)
            else:
                parts.append(part)
        return parts

    def _cut(self) -> bytes | None:
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = self._buffer[:head_end].decode()
        length = int(head.split("Content-Length: ")[1].split("\r\n")[0])
        start = head_end + 4
        if len(self._buffer) < start + length + 2:
            return None
        part = self._buffer[start : start + length]
        self._buffer = self._buffer[start + length + 2 :]
        return part


def decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_snapshot_has_the_chosen_size(camera: IPCamera) -> None:
    response = httpx.get(f"http://127.0.0.1:{camera.port}/snapshot.jpg")
    assert response.headers["content-type"] == "image/jpeg"
    assert decode(response.content).shape == (120, 160, 3)


def test_stream_is_mjpeg_and_moves(camera: IPCamera) -> None:
    with httpx.stream("GET", camera.url, timeout=5) as response:
        assert response.headers["content-type"].startswith("multipart/x-mixed-replace")
        first, *_, last = Parts(response).take(5)
    assert not np.array_equal(decode(first), decode(last))
    assert camera.connections == 1


def test_stall_keeps_the_connection_but_sends_nothing(camera: IPCamera) -> None:
    with httpx.stream("GET", camera.url, timeout=5) as response:
        parts = Parts(response)
        parts.take(1)
        camera.stall()
        with (
            pytest.raises(httpx.ReadTimeout),
            httpx.stream("GET", camera.url, timeout=0.5) as stalled,
        ):
            Parts(stalled).take(1)
        camera.resume()
        assert len(parts.take(2)) == 2


def test_drop_ends_open_streams_and_accepts_new_ones(camera: IPCamera) -> None:
    with httpx.stream("GET", camera.url, timeout=5) as response:
        parts = Parts(response)
        parts.take(1)
        camera.drop()
        with pytest.raises((httpx.RemoteProtocolError, StopIteration, httpx.ReadError)):
            parts.take(100)
    with httpx.stream("GET", camera.url, timeout=5) as again:
        assert len(Parts(again).take(1)) == 1


def test_stop_refuses_connections_until_resumed(camera: IPCamera) -> None:
    camera.stop()
    assert camera.mode is Mode.STOPPED
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{camera.port}/snapshot.jpg")
    camera.resume()
    assert httpx.get(f"http://127.0.0.1:{camera.port}/snapshot.jpg").status_code == 200


def test_stop_for_a_while_resumes_by_itself(camera: IPCamera) -> None:
    camera.stop(seconds=0.2)
    deadline = time.monotonic() + 5
    while camera.mode is Mode.STOPPED and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpx.get(f"http://127.0.0.1:{camera.port}/snapshot.jpg").status_code == 200


def test_http_control_endpoints(camera: IPCamera) -> None:
    base = f"http://127.0.0.1:{camera.port}/control"
    assert httpx.post(f"{base}/stall").status_code == 204
    assert httpx.get(f"{base}/status").json()["mode"] == "stalled"
    assert httpx.post(f"{base}/resume").status_code == 204
    assert httpx.get(f"{base}/status").json()["mode"] == "streaming"
    assert httpx.post(f"{base}/stop").status_code == 404  # stop needs ?seconds=N


def test_painted_polygon_is_in_the_scene() -> None:
    paint = Paint(((0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0)), MAGENTA)
    with IPCamera(width=160, height=120, fps=20, paint=(paint,), jpeg_quality=95) as cam:
        image = decode(httpx.get(f"http://127.0.0.1:{cam.port}/snapshot.jpg").content)
    b, g, r = (int(v) for v in image[100, 140])
    assert min(b, r) > 200
    assert g < 60
