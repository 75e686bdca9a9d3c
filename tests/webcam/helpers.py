"""Small helpers for webcam tests: reading parts, decoding them, collecting a stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from webcam.pipeline import FrameKind


@dataclass
class Received:
    kind: FrameKind
    jpeg: bytes
    at: float  # the event loop's clock when the part arrived


@dataclass
class Watcher:
    """Reads a stream in the background, keeping every part it receives."""

    parts: list[Received] = field(default_factory=list)
    ended: bool = False

    async def run(self, stream: AsyncIterator[bytes], every: float = 0.0) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for chunk in stream:
                if chunk.startswith(b"--") and b"\r\n\r\n" in chunk:
                    kind, jpeg = split_part(chunk)
                    self.parts.append(Received(kind, jpeg, loop.time()))
                if every:
                    await asyncio.sleep(every)
            self.ended = True
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    def kinds_since(self, index: int) -> list[FrameKind]:
        return [p.kind for p in self.parts[index:]]

    async def wait_for(self, kind: FrameKind, *, after: int = 0, timeout: float = 5.0) -> float:
        """The loop time the first part of `kind` (at index `after` or later) arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for part in self.parts[after:]:
                if part.kind is kind:
                    return part.at
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {kind} part within {timeout}s: {self.kinds_since(after)}")


def split_part(part: bytes) -> tuple[FrameKind, bytes]:
    head, _, rest = part.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
    length = int(headers["Content-Length"])
    assert rest[length:] == b"\r\n"
    return FrameKind(headers["X-Frame-Kind"]), rest[:length]


def decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image
