"""The load client of `bench/stream.py`: many MJPEG viewers per process, cheaply.

Each process runs one event loop (uvloop when installed) with one `asyncio.Protocol` per
viewer over a raw socket. A viewer does not decode images: it looks for the part header
our pipeline writes (`X-Frame-Kind: live` then `X-Captured-At: <unix time>`), counts
frames and notes capture-to-delivery latency. Streams are requested over HTTP/1.0 so the
body is not chunked and headers are never split by chunk framing.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

MARK = b"X-Frame-Kind: live\r\nX-Captured-At: "
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
STREAM_SRC = re.compile(r'src="(/cameras/\d+/stream\.mjpg\?t=[^"]+)"')


@dataclass
class Viewer(asyncio.Protocol):
    counting: bool = False
    frames: int = 0
    latencies: list[float] = field(default_factory=list)
    status: int | None = None
    closed: bool = False
    _head: bytes = b""
    _tail: bytes = b""
    transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.status is None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = int(self._head.split(b" ", 2)[1])
            data, self._head = self._head[end + 4:], b""
        buffer = self._tail + data
        now, start, consumed = time.time(), 0, 0
        while (found := buffer.find(MARK, start)) >= 0:
            stop = buffer.find(b"\r\n", found + len(MARK))
            if stop < 0:
                break
            if self.counting:
                self.frames += 1
                self.latencies.append(now - float(buffer[found + len(MARK):stop]))
            start = consumed = stop
        self._tail = buffer[max(consumed, len(buffer) - len(MARK) - 24):]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True


async def sign_in(base: str, email: str, password: str | None, cookie: str | None) -> str:
    """Sign in like a browser (or reuse a session cookie), open the camera page and
    return (cookie, the signed stream path)."""
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        if cookie is None:
            page = await client.get("/login")
            token = CSRF.search(page.text)
            assert token, "no login form"
            done = await client.post("/login", data={
                "email": email, "password": password or "", "csrf_token": token.group(1),
                "next": "/parent/cameras"})
            assert done.status_code == 303, f"login failed for {email}: {done.status_code}"
            cookie = client.cookies["moulin_session"]
        else:
            client.cookies.set("moulin_session", cookie)
        page = await client.get("/parent/cameras")
        found = STREAM_SRC.search(page.text)
        assert found, f"no live camera on {email}'s page"
        return cookie + "\n" + found.group(1).replace("&amp;", "&")


async def open_stream(base: str, cookie: str, path: str) -> Viewer:
    parts = urlsplit(base)
    loop = asyncio.get_running_loop()
    _, viewer = await loop.create_connection(Viewer, parts.hostname, parts.port)
    viewer.transport.write(
        f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\nCookie: moulin_session={cookie}\r\n"
        "User-Agent: moulin-bench\r\n\r\n".encode())
    return viewer


async def run_viewers(base: str, logins: list[tuple[str, str | None, str | None]],
                      ready: Any, start: Any, seconds: float) -> dict[str, Any]:
    """Sign in, open every stream, say ready, wait for `start`, count for `seconds`."""
    gate = asyncio.Semaphore(16)

    async def one(email: str, password: str | None, cookie: str | None) -> Viewer:
        async with gate:
            got = await sign_in(base, email, password, cookie)
        cookie_, path = got.split("\n")
        return await open_stream(base, cookie_, path)

    viewers = await asyncio.gather(*(one(*login) for login in logins))
    loop = asyncio.get_running_loop()
    ready.release()
    await loop.run_in_executor(None, start.wait)
    cpu0 = time.process_time()
    for viewer in viewers:
        viewer.counting = True
    await asyncio.sleep(seconds)
    for viewer in viewers:
        viewer.counting = False
    cpu = time.process_time() - cpu0
    for viewer in viewers:
        viewer.transport.close()
    return {"fps": [v.frames / seconds for v in viewers],
            "latencies": [x for v in viewers for x in v.latencies[::5]],
            "statuses": [v.status for v in viewers], "cpu_seconds": cpu}


def worker(base: str, logins: list[tuple[str, str | None, str | None]], ready: Any,
           start: Any, seconds: float, results: Any) -> None:
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        results.put(runner(run_viewers(base, logins, ready, start, seconds)))
    except BaseException as exc:
        results.put({"error": f"{type(exc).__name__}: {exc}"})
        ready.release()  # do not leave the coordinator waiting
        raise
