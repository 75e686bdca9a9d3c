"""The portal under uvicorn in a thread, a small school with a camera per room, and an
MJPEG reader: what the HTTP tests of the cameras share."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import time as clock_time
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from sqlmodel import Session, select

from firmware_mocks.ip_camera import IPCamera
from school.models import ClassroomStaff, Guardianship
from tests.factories import PASSWORD, SmallSchool
from tests.live import serving
from webcam import admin, consents, schedule
from webcam.access import required_consents
from webcam.models import BroadcastSlot, Camera, CameraConsent
from webcam.pipeline import FrameKind

SECRET = "s3cret-Pa55"  # the cameras' password: must never leave the server
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def serve(app: FastAPI) -> AbstractContextManager[str]:
    """`app` on a free loopback port, with lifespan, until the block ends."""
    return serving(app, lifespan=True)


def login(base: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    page = client.get("/login")
    token = CSRF_INPUT.search(page.text)
    assert token is not None
    done = client.post("/login", data={"email": email, "password": PASSWORD,
                                       "csrf_token": token.group(1), "next": "/"})
    assert done.status_code == 303, done.text
    return client


def csrf(client: httpx.Client, path: str) -> str:
    match = CSRF_INPUT.search(client.get(path).text)
    assert match is not None
    return match.group(1)


def stream_urls(page: str) -> dict[int, str]:
    """The signed stream URL of each camera a page shows, by camera id."""
    found = re.findall(r'src="(/cameras/(\d+)/stream\.mjpg\?t=[^"]+)"', page)
    return {int(cid): url.replace("&amp;", "&") for url, cid in found}


@dataclass
class CameraSchool:
    school: SmallSchool
    cameras: list[Camera]  # one per room, same order as school.rooms
    mocks: list[IPCamera]


def equip(session: Session, school: SmallSchool, mocks: list[IPCamera], secret_key: str,
          ) -> CameraSchool:
    """A camera per room (its URL carrying a password), slots every day 8:00-16:00 local,
    the teacher assigned to both rooms, and every consent recorded."""
    cameras = []
    for room, mock in zip(school.rooms, mocks, strict=True):
        source = mock.url.replace("http://", f"http://admin:{SECRET}@")
        cameras.append(admin.add_camera(session=session, classroom=room, name=f"Cam {room.name}",
                                        source=source, secret_key=secret_key,
                                        actor_user_id=school.admin.id or 0))
        session.add(ClassroomStaff(classroom_id=room.id or 0, user_id=school.teacher.id or 0))
        for weekday in range(7):
            schedule.add_slot(session=session, classroom=room, weekday=weekday,
                              starts=clock_time(8), ends=clock_time(16),
                              actor_user_id=school.admin.id or 0)
    session.flush()
    record_all_consents(session, school)
    session.commit()
    return CameraSchool(school, cameras, mocks)


def record_all_consents(session: Session, school: SmallSchool) -> None:
    from tests.conftest import FakeClock

    now = FakeClock().now
    for room in school.rooms:
        for required in required_consents(session, room.id or 0, day=now.date(), now=now):
            if required.consent is None:
                consents.record_consent(
                    session=session, classroom=room, user_id=required.user.id or 0,
                    document_ref="classeur 1", actor_user_id=school.office.id or 0,
                    now=now, today=now.date())


def set_slots(session: Session, room_id: int, starts: clock_time, ends: clock_time) -> None:
    for slot in session.exec(select(BroadcastSlot).where(BroadcastSlot.classroom_id == room_id)):
        slot.starts_at, slot.ends_at = starts, ends
        session.add(slot)


def guardianships(session: Session, user_id: int) -> list[Guardianship]:
    return list(session.exec(select(Guardianship).where(Guardianship.user_id == user_id)))


def active_consents(session: Session, room_id: int) -> list[CameraConsent]:
    return list(session.exec(select(CameraConsent).where(
        CameraConsent.classroom_id == room_id, CameraConsent.withdrawn_at == None  # noqa: E711
    )))


@dataclass
class Part:
    kind: FrameKind
    jpeg: bytes
    at: float  # time.monotonic() when it arrived
    captured_at: float


class Reader:
    """Reads an MJPEG stream in a thread over a raw socket (HTTP/1.0, so the body is not
    chunked), keeping each part and when it came. `close` shuts the socket down, which
    the server sees at once even while the thread is blocked reading."""

    def __init__(self, base: str, path: str, cookie: str | None,
                 user_agent: str = "reader") -> None:
        parts = urlsplit(base)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        head = (f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\nAccept: */*\r\n"
                f"User-Agent: {user_agent}\r\n")
        if cookie:
            head += f"Cookie: moulin_session={cookie}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self._file = self.sock.makefile("rb")
        self.status = int(self._file.readline().split()[1])
        while self._file.readline() not in (b"\r\n", b""):
            pass
        self.parts: list[Part] = []
        self.ended_at: float | None = None

    def start(self) -> Reader:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError, ValueError):
            self._file.close()
        self.sock.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        buffer = b""
        try:
            while chunk := self._file.read1(65536):
                buffer = self._split(buffer + chunk)
        except (OSError, ValueError):
            pass
        self.ended_at = time.monotonic()
    def _split(self, buffer: bytes) -> bytes:
        while True:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0 or not buffer.startswith(b"--"):
                return buffer
            headers = dict(line.split(": ", 1) for line in
                           buffer[:head_end].decode().split("\r\n")[1:] if ": " in line)
            if "Content-Length" not in headers:  # the closing boundary
                return b""
            end = head_end + 4 + int(headers["Content-Length"])
            if len(buffer) < end + 2:
                return buffer
            self.parts.append(Part(FrameKind(headers["X-Frame-Kind"]),
                                   buffer[head_end + 4:end], time.monotonic(),
                                   float(headers["X-Captured-At"])))
            buffer = buffer[end + 2:]

    def wait_for(self, kind: FrameKind, *, after: int = 0, timeout: float = 8.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for part in self.parts[after:]:
                if part.kind is kind:
                    return part.at
            time.sleep(0.02)
        raise AssertionError(f"no {kind} within {timeout}s: {[p.kind for p in self.parts[after:]]}")

    def wait_end(self, timeout: float = 5.0) -> float:
        deadline = time.monotonic() + timeout
        while self.ended_at is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.ended_at is not None, "the stream did not end"
        return self.ended_at


def watch(base: str, client: httpx.Client, path: str) -> Reader:
    """Open `path` as `client`'s browser session would, reading parts in the background."""
    reader = Reader(base, path, client.cookies.get("moulin_session"),
                    client.headers.get("user-agent", "reader"))
    return reader.start() if reader.status == 200 else reader
