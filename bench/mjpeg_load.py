"""The load client of `bench/stream.py`: many MJPEG viewers per process, cheaply.

Each process runs one event loop (uvloop when installed) with one `asyncio.Protocol` per
viewer over a raw socket. A viewer does not decode images: it counts the parts it
receives by a header each part carries. Against Moulin that is the pair our pipeline
writes (`X-Frame-Kind: live` then `X-Captured-At: <unix time>`), which also gives the
capture-to-delivery latency; against `motion` it is motion's `Content-type` line.
Streams are requested over HTTP/1.0 and searched as bytes; a header cut across two
reads is found once the rest arrives.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

MOULIN_MARK = b"X-Frame-Kind: live\r\nX-Captured-At: "
MOTION_MARK = b"Content-type: image/jpeg\r\n"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
STREAM_SRC = re.compile(r'src="(/cameras/\d+/stream\.mjpg\?t=[^"]+)"')

# e-mail, password (None: the session below is already open), session cookie
Login = tuple[str, str | None, str | None]


@dataclass
class Viewer(asyncio.Protocol):
    mark: bytes = MOULIN_MARK
    stamped: bool = True  # the mark is followed by the capture time, then CRLF
    counting: bool = False
    frames: int = 0
    latencies: list[float] = field(default_factory=list)
    seen: set[bytes] = field(default_factory=set)  # capture times received, shared
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
        now, start, consumed, mark = time.time(), 0, 0, self.mark
        while (found := buffer.find(mark, start)) >= 0:
            stop = found + len(mark)
            if self.stamped:
                stop = buffer.find(b"\r\n", stop)
                if stop < 0:
                    break
            if self.counting:
                self.frames += 1
                if self.stamped:
                    stamp = buffer[found + len(mark):stop]
                    self.latencies.append(now - float(stamp))
                    self.seen.add(stamp)
            start = consumed = stop
        self._tail = buffer[max(consumed, len(buffer) - len(mark) - 24):]

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


async def open_stream(base: str, path: str, cookie: str | None, viewer: Viewer) -> Viewer:
    """Ask for the stream; a refused connection leaves the viewer without a status."""
    parts = urlsplit(base)
    loop = asyncio.get_running_loop()
    try:
        await loop.create_connection(lambda: viewer, parts.hostname or "127.0.0.1",
                                     parts.port or 80)
    except OSError:
        viewer.closed = True
        return viewer
    session = f"Cookie: moulin_session={cookie}\r\n" if cookie else ""
    viewer.transport.write(
        f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\n{session}"
        "User-Agent: moulin-bench\r\n\r\n".encode())
    return viewer


async def run_viewers(base: str, logins: list[Login | None], ready: Any, start: Any,
                      seconds: float) -> dict[str, Any]:
    """Open every stream (a login: through the portal; None: `base` itself, as motion
    serves it), say ready, wait for `start`, count for `seconds`."""
    gate = asyncio.Semaphore(16)
    seen: set[bytes] = set()

    async def one(login: Login | None) -> Viewer:
        if login is None:
            viewer = Viewer(mark=MOTION_MARK, stamped=False)
            return await open_stream(base, urlsplit(base).path or "/", None, viewer)
        async with gate:
            got = await sign_in(base, *login)
        cookie, path = got.split("\n")
        return await open_stream(base, path, cookie, Viewer(seen=seen))

    viewers = await asyncio.gather(*(one(login) for login in logins))
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
        if viewer.transport is not None:
            viewer.transport.close()
    return {"fps": [v.frames / seconds for v in viewers],
            "latencies": [x for v in viewers for x in v.latencies[::5]],
            "statuses": [v.status for v in viewers], "cpu_seconds": cpu, "seen": sorted(seen)}


def worker(base: str, logins: list[Login | None], ready: Any, start: Any, seconds: float,
           results: Any) -> None:
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
