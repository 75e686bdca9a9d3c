"""The fan-out hub: one channel per camera holding only its newest encoded frame.

The capture thread publishes without ever waiting; each viewer asks for a frame newer
than the one it last had and gets the newest, so a slow viewer simply skips frames. One
exception: a viewer exactly one live frame behind gets the frame it missed, then the
newest; a viewer reached late in a fan-out (the server busy for a moment, not the viewer
slow) thus gets every frame, a little later, rather than losing one. A channel holds two
frames and, per event loop, one future that the viewers waiting now all wait on, whatever
the viewers do: memory does not grow with slow or stalled viewers. The viewer count
drives the 'on air' signal.

Waiting happens for every viewer and every frame (ten thousand times a second for a
thousand viewers), so it is kept cheap: a viewer whose frame is already there takes it
without a lock or a future; the others share one future per loop, which a publish sets
once (waking a thousand waiters through a future each, as `asyncio.Event` does, cost
about four times as much in a micro-benchmark). When one
waiting task is cancelled, asyncio cancels the future it waits on, the shared one: the
other waiters see that their own task was not cancelled and wait again.

Timeouts are kept by one ticker task per event loop rather than one timer per wait
(arming and cancelling a timer around every wait cost about a fifth of the event loop):
it wakes the loop's waiters, all of them, once the earliest of their deadlines has passed,
within `TICK` seconds. Waiters that share their deadlines (see `webcam.stream`) are thus
woken once per deadline rather than once per waiter.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from webcam.pipeline import EncodedFrame, FrameKind

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
        self._previous: Published | None = None  # the frame published before the latest
        self._wakes: dict[asyncio.AbstractEventLoop, asyncio.Future[None]] = {}
        self._earliest: dict[asyncio.AbstractEventLoop, float] = {}  # loop.time() deadlines
        self._tickers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._viewers = 0
        self._listeners: list[Callable[[int], None]] = []
        self.dropped = 0  # frames viewers skipped for being too slow (see webcam.stream)

    def publish(self, frame: EncodedFrame) -> None:
        with self._lock:
            sequence = self._latest.sequence + 1 if self._latest else 1
            self._previous = self._latest
            self._latest = Published(sequence, frame)
            loops = list(self._wakes)
        for loop in loops:
            try:
                loop.call_soon_threadsafe(self._wake, loop)
            except RuntimeError:  # that loop has closed; forget its waiters
                with self._lock:
                    self._wakes.pop(loop, None)
                    self._earliest.pop(loop, None)

    @property
    def latest(self) -> Published | None:
        return self._latest

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            future = self._wakes.pop(loop, None)
            self._earliest.pop(loop, None)  # every waiter woken registers its deadline again
        if future is not None and not future.done():
            future.set_result(None)

    async def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake this loop's waiters once the earliest of their deadlines has passed; end
        when none is left waiting."""
        while True:
            await asyncio.sleep(TICK)
            with self._lock:
                if loop not in self._wakes:
                    self._tickers.pop(loop, None)
                    return
                due = loop.time() >= self._earliest.get(loop, math.inf)
            if due:
                self._wake(loop)

    def _after(self, after: int) -> Published | None:
        """The frame for a viewer that last had frame `after`, if there is one yet. Reads
        without the lock: the sequence numbers tell whether the two frames are a pair."""
        latest = self._latest
        if latest is None or latest.sequence <= after:
            return None
        if latest.sequence == after + 2:
            previous = self._previous
            if (previous is not None and previous.sequence == after + 1
                    and previous.frame.kind is FrameKind.LIVE
                    and latest.frame.kind is FrameKind.LIVE):
                return previous  # missed by a moment: never a live frame once a card came
        return latest

    async def next(
        self, after: int, timeout: float, *, loop: asyncio.AbstractEventLoop | None = None
    ) -> Published | None:
        """A frame newer than `after` (the newest, or the one missed by a viewer one live
        frame behind), waiting up to `timeout` seconds for one; None if none came.

        A caller that waits in a loop passes its event `loop`: finding the running loop
        costs a system call (`getpid`) each time."""
        if (got := self._after(after)) is not None:
            return got
        loop = loop or asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while True:
            with self._lock:  # look and register together, or a publish could slip between
                if (got := self._after(after)) is not None:
                    return got
                if loop.time() >= deadline:
                    return None
                future = self._wakes.get(loop)
                if future is None or future.done():
                    future = self._wakes[loop] = loop.create_future()
                if deadline < self._earliest.get(loop, math.inf):
                    self._earliest[loop] = deadline
                if loop not in self._tickers:
                    self._tickers[loop] = loop.create_task(self._tick(loop))
            try:
                await future
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not future.cancelled() or task is None or task.cancelling():
                    raise
                # Another waiter's task was cancelled, and with it the future we share.
                continue
            if (got := self._after(after)) is not None:
                return got

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
