"""A mock IP camera: serves MJPEG over HTTP on loopback and misbehaves on command.

It draws `ClassroomScene` at a chosen size and frame rate, encodes each frame once and
sends it to every client. Tests drive failures through the Python API; demos (and the
`moulin mock camera` command, still to come) use the HTTP control endpoints.

| path                          | what it does                                            |
| ----------------------------- | ------------------------------------------------------- |
| `GET /video.mjpg`             | `multipart/x-mixed-replace` stream of JPEG frames       |
| `GET /snapshot.jpg`           | the latest frame                                        |
| `GET /control/status`         | JSON: mode, connections accepted, streams open, frames  |
| `POST /control/stall`         | keep connections open but send no frames                |
| `POST /control/drop`          | close every open stream (new ones are accepted)         |
| `POST /control/stop?seconds=N`| refuse connections (listener closed) for N seconds      |
| `POST /control/resume`        | back to streaming                                       |
"""

from __future__ import annotations

import contextlib
import enum
import logging
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

import cv2

from firmware_mocks.camera_scene import ClassroomScene, Paint
from firmware_mocks.ip_camera_http import BOUNDARY, make_server

logger = logging.getLogger(__name__)


class Mode(enum.StrEnum):
    STREAMING = "streaming"
    STALLED = "stalled"
    STOPPED = "stopped"


class IPCamera:
    """Start with `start()` or `with IPCamera(...) as cam:`; `cam.url` is the stream address."""

    def __init__(
        self,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 10.0,
        port: int = 0,
        paint: tuple[Paint, ...] = (),
        jpeg_quality: int = 80,
    ) -> None:
        self.fps = fps
        self.jpeg_quality = jpeg_quality
        self._scene = ClassroomScene(width, height, paint)
        self._port = port
        self._cond = threading.Condition()
        self._jpeg = b""
        self._frames = 0
        self._mode = Mode.STREAMING
        self._drops = 0  # streams opened before the latest drop close themselves
        self._closing = False
        self._streams: set[socket.socket] = set()
        self.connections = 0  # video streams accepted since start
        self._server: ThreadingHTTPServer | None = None
        self._server_thread: threading.Thread | None = None
        self._producer: threading.Thread | None = None
        self._resume_timer: threading.Timer | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> IPCamera:
        self._render_one()
        self._producer = threading.Thread(target=self._produce, name="mock-camera", daemon=True)
        self._producer.start()
        self._listen()
        return self

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._cancel_timer()
        self._unlisten()
        self._drop_streams()
        if self._producer is not None:
            self._producer.join(timeout=5)

    def __enter__(self) -> IPCamera:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/video.mjpg"

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def frames_rendered(self) -> int:
        return self._frames

    @property
    def open_streams(self) -> int:
        with self._cond:
            return len(self._streams)

    # -- misbehaviour ------------------------------------------------------------------

    def stall(self) -> None:
        """Keep every connection open but send nothing more until `resume`."""
        self._set_mode(Mode.STALLED)

    def drop(self) -> None:
        """Close the streams open now, as a camera rebooting its network stack would."""
        self._drop_streams()

    def stop(self, seconds: float | None = None) -> None:
        """Refuse connections until `resume` (or for `seconds`); open streams are dropped."""
        self._set_mode(Mode.STOPPED)
        self._unlisten()
        self._drop_streams()
        if seconds is not None:
            self._cancel_timer()
            self._resume_timer = threading.Timer(seconds, self.resume)
            self._resume_timer.daemon = True
            self._resume_timer.start()

    def resume(self) -> None:
        was = self._mode
        self._set_mode(Mode.STREAMING)
        if was is Mode.STOPPED and not self._closing:
            self._listen()

    def _set_mode(self, mode: Mode) -> None:
        with self._cond:
            self._mode = mode
            self._cond.notify_all()

    def _cancel_timer(self) -> None:
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None

    # -- frames ------------------------------------------------------------------------

    def _produce(self) -> None:
        period = 1.0 / self.fps
        due = time.monotonic()
        while not self._closing:
            due += period
            delay = due - time.monotonic()
            if delay < -period:  # fell far behind: skip rather than burst
                due = time.monotonic()
            with self._cond:
                if self._cond.wait_for(lambda: self._closing, timeout=max(0.0, delay)):
                    return
            self._render_one()

    def _render_one(self) -> None:
        image = self._scene.render(self._frames + 1, datetime.now(UTC))
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:  # pragma: no cover - OpenCV can always encode a plain BGR image
            raise RuntimeError("JPEG encoding failed")
        with self._cond:
            self._jpeg = buf.tobytes()
            self._frames += 1
            self._cond.notify_all()

    def latest_jpeg(self) -> bytes:
        with self._cond:
            return self._jpeg

    def next_part(self, after: int, drops: int) -> tuple[int, bytes] | None:
        """The next frame to send after frame `after`, or None when the stream must end."""

        def ready() -> bool:
            return (
                self._closing
                or self._drops != drops
                or self._mode is Mode.STOPPED
                or (self._mode is Mode.STREAMING and self._frames > after)
            )

        with self._cond:
            while not self._cond.wait_for(ready, timeout=0.5):
                pass
            if self._closing or self._drops != drops or self._mode is Mode.STOPPED:
                return None
            jpeg, number = self._jpeg, self._frames
        head = (
            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
        ).encode()
        return number, head + jpeg + b"\r\n"

    # -- network -----------------------------------------------------------------------

    def _listen(self) -> None:
        server = make_server(self, self._port)
        self._port = server.server_address[1]
        self._server = server
        self._server_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"mock-camera-{self._port}",
            daemon=True,
        )
        self._server_thread.start()
        logger.debug("mock camera listening on %s", self.url)

    def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def _drop_streams(self) -> None:
        with self._cond:
            self._drops += 1
            streams = list(self._streams)
            self._cond.notify_all()
        for sock in streams:
            with contextlib.suppress(OSError):  # the client may already have gone
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 5
        with self._cond:
            self._cond.wait_for(lambda: not self._streams, timeout=deadline - time.monotonic())

    def register_stream(self, sock: socket.socket) -> int:
        with self._cond:
            self._streams.add(sock)
            self.connections += 1
            return self._drops

    def unregister_stream(self, sock: socket.socket) -> None:
        with self._cond:
            self._streams.discard(sock)
            self._cond.notify_all()

    def status(self) -> dict[str, Any]:
        with self._cond:
            return {
                "mode": self._mode.value,
                "connections": self.connections,
                "open_streams": len(self._streams),
                "frames": self._frames,
                "fps": self.fps,
                "width": self._scene.width,
                "height": self._scene.height,
            }
