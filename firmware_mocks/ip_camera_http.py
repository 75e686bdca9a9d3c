"""The HTTP side of the mock IP camera: the video stream, a snapshot and control endpoints.

See `firmware_mocks.ip_camera` for the paths; this module only speaks HTTP on behalf of
a camera that offers the calls in `Camera`.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

BOUNDARY = "mockcameraframe"


class Camera(Protocol):
    def latest_jpeg(self) -> bytes: ...
    def status(self) -> dict[str, Any]: ...
    def stall(self) -> None: ...
    def drop(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self, seconds: float | None = None) -> None: ...
    def register_stream(self, sock: socket.socket) -> int: ...
    def unregister_stream(self, sock: socket.socket) -> None: ...
    def next_part(self, after: int, drops: int) -> tuple[int, bytes] | None: ...


def make_server(camera: Camera, port: int) -> ThreadingHTTPServer:
    """A server for `camera` bound on loopback (`port` 0 picks a free one); not yet serving."""
    server = _Server(("127.0.0.1", port), _Handler)
    server.camera = camera
    return server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    camera: Camera

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("mock camera: error with client %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("mock camera: " + format, *args)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        camera = self.server.camera
        if path in ("/", "/video.mjpg"):
            self._stream(camera)
        elif path == "/snapshot.jpg":
            self._reply(HTTPStatus.OK, "image/jpeg", camera.latest_jpeg())
        elif path == "/control/status":
            self._reply(HTTPStatus.OK, "application/json", json.dumps(camera.status()).encode())
        else:
            self._reply(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        camera = self.server.camera
        query = parse_qs(url.query)
        actions = {
            "/control/stall": camera.stall,
            "/control/drop": camera.drop,
            "/control/resume": camera.resume,
        }
        if url.path in actions:
            self._reply(HTTPStatus.NO_CONTENT, "text/plain", b"")
            actions[url.path]()
        elif url.path == "/control/stop" and "seconds" in query:
            self._reply(HTTPStatus.NO_CONTENT, "text/plain", b"")
            seconds = float(query["seconds"][0])
            threading.Thread(target=camera.stop, args=(seconds,), daemon=True).start()
        else:
            self._reply(
                HTTPStatus.NOT_FOUND, "text/plain", b"unknown control (stop needs ?seconds=N)\n"
            )

    def _reply(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _stream(self, camera: Camera) -> None:
        drops = camera.register_stream(self.connection)
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            number = 0
            while (part := camera.next_part(number, drops)) is not None:
                number, data = part
                self.wfile.write(data)
                self.wfile.flush()
        except OSError:
            pass  # the client went away, or we dropped it
        finally:
            camera.unregister_stream(self.connection)
