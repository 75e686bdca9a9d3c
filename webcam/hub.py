"""The fan-out hub: one channel per camera holding only its newest encoded frame.

The capture thread publishes without ever waiting; each viewer asks for the first frame
newer than the one it last had, so a slow viewer simply skips frames. A channel holds one
frame and, per event loop, one `asyncio.Event`, whatever the number of viewers: memory
does not grow with slow or stalled viewers. The viewer count drives the 'on air' signal.

Waiting viewers' timeouts are kept by one ticker task per event loop rather than one
timer per wait: at a thousand viewers and ten frames a second, arming and cancelling a
timer around every wait cost about a fifth of the event loop. The ticker wakes the
waiters when the earliest deadline among them has passed, so a timeout is honoured to
within `TICK` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from webcam.pipeline import EncodedFrame

logger = logging.getLogger(__name__)

TICK = 0.05  # seconds: how late a timeout may fire


class Published(NamedTuple):
    sequence: int  # counts up by one for each frame published on the channel
    frame: EncodedFrame


class Channel:
    """The latest frame of one camera; `publish` from any thread, `next` from asyncio."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._latest: Published | None = None
        self._events: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}
        self._earliest: dict[asyncio.AbstractEventLoop, float] = {}  # loop.time() deadlines
        self._tickers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._viewers = 0
        self._listeners: list[Callable[[int], None]] = []
        self.dropped = 0  # frames viewers skipped for being too slow (see webcam.stream)

    def publish(self, frame: EncodedFrame) -> None:
        with self._lock:
            sequence = self._latest.sequence + 1 if self._latest else 1
            self._latest = Published(sequence, frame)
            loops = list(self._events)
        for loop in loops:
            try:
                loop.call_soon_threadsafe(self._wake, loop)
            except RuntimeError:  # that loop has closed; forget its waiters
                with self._lock:
                    self._events.pop(loop, None)

    @property
    def latest(self) -> Published | None:
        return self._latest

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            event = self._events.pop(loop, None)
            self._earliest.pop(loop, None)  # every waiter woken registers its deadline again
        if event is not None:
            event.set()

    async def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake this loop's waiters once the earliest of their deadlines has passed; end
        when none is left waiting."""
        while True:
            await asyncio.sleep(TICK)
            with self._lock:
                if loop not in self._events:
                    self._tickers.pop(loop, None)
                    return
                due = loop.time() >= self._earliest.get(loop, float("inf"))
            if due:
                self._wake(loop)

    async def next(self, after: int, timeout: float) -> Published | None:
        """The newest frame if it is newer than `after`, waiting up to `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while True:
            with self._lock:
                latest = self._latest
                if latest is not None and latest.sequence > after:
                    return latest
                if loop.time() >= deadline:
                    return None
                event = self._events.setdefault(loop, asyncio.Event())
                self._earliest[loop] = min(self._earliest.get(loop, deadline), deadline)
                if loop not in self._tickers:
                    self._tickers[loop] = loop.create_task(self._tick(loop))
            await event.wait()

    @property
    def viewers(self) -> int:
        return self._viewers

    def on_viewers_changed(self, listener: Callable[[int], None]) -> None:
        """Call `listener(count)` whenever a viewer arrives or leaves (for 'on air')."""
        self._listeners.append(listener)

    @contextmanager
    def viewer(self) -> Iterator[None]:
        """Count one viewer for as long as the block runs."""
        self._change_viewers(+1)
        try:
            yield
        finally:
            self._change_viewers(-1)

    def _change_viewers(self, delta: int) -> None:
        with self._lock:
            self._viewers += delta
            count = self._viewers
        for listener in list(self._listeners):
            try:
                listener(count)
            except Exception:
                logger.exception("viewer-count listener failed on channel %s", self.name)


class Hub:
    """The channels of every camera this process serves, by camera id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[int, Channel] = {}

    def channel(self, camera_id: int) -> Channel:
        with self._lock:
            channel = self._channels.get(camera_id)
            if channel is None:
                channel = self._channels[camera_id] = Channel(f"camera-{camera_id}")
            return channel

    def viewer_counts(self) -> dict[int, int]:
        with self._lock:
            return {cid: ch.viewers for cid, ch in self._channels.items()}
