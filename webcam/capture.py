"""The capture worker: one thread per camera, reading it, running the pipeline, publishing.

However many people watch, the camera is opened once, by this worker. When the camera
fails the worker publishes the 'camera offline' card and keeps going while the driver
reconnects; while the room is paused it publishes only the 'paused' card. Publishing
never waits for viewers (see `webcam.hub`).
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from hardware.cameras.base import CameraClosed, CameraSource, CameraState, CameraUnavailable
from school.clock import Clock, utcnow
from webcam.hub import Channel
from webcam.pipeline import EncodedFrame, FrameKind, Pipeline

logger = logging.getLogger(__name__)


class CaptureWorker:
    """Feeds `channel` from `source` through `pipeline` until `stop`; owns (and closes) source."""

    def __init__(
        self,
        *,
        source: CameraSource,
        pipeline: Pipeline,
        channel: Channel,
        clock: Clock = utcnow,
        card_interval: float = 1.0,
    ) -> None:
        self._source = source
        self._pipeline = pipeline
        self._channel = channel
        self._clock = clock
        self._card_interval = card_interval
        self._stop = threading.Event()
        self._publish_lock = threading.Lock()  # pause and publish decide together
        self._paused = False
        self._last_card: tuple[FrameKind, float] | None = None
        self._thread: threading.Thread | None = None
        self.frames_published = 0

    def start(self) -> CaptureWorker:
        if self._thread is not None:
            raise RuntimeError("capture worker already started")
        self._thread = threading.Thread(
            target=self._run, name=f"capture-{self._channel.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error("capture of %s did not stop in %ss", self._source.name, timeout)
        else:
            self._source.close()

    def __enter__(self) -> CaptureWorker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def state(self) -> CameraState:
        return self._source.state

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """From now on no live frame is published; viewers get the 'paused' card at once."""
        with self._publish_lock:
            self._paused = True
            self._publish_card_locked(FrameKind.PAUSED, force=True)
        logger.info("camera %s paused", self._channel.name)

    def resume(self) -> None:
        with self._publish_lock:
            self._paused = False
        logger.info("camera %s resumed", self._channel.name)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._step()
        finally:
            self._source.close()
            # Leave no live frame behind in the channel for anyone who still watches.
            self._publish_card(FrameKind.OFFLINE, force=True)

    def _step(self) -> None:
        try:
            frame = self._source.read()
        except CameraClosed:
            self._stop.set()
            return
        except CameraUnavailable as exc:
            self._publish_card(FrameKind.OFFLINE)
            self._stop.wait(min(max(exc.retry_in, 0.05), self._card_interval))
            return
        if self._paused:
            self._publish_card(FrameKind.PAUSED)
            return
        try:
            encoded = self._pipeline.live(frame)
        except Exception:
            # A frame we cannot mask or encode is never sent; say so, then carry on.
            logger.exception("pipeline failed on a frame of %s", self._source.name)
            self._publish_card(FrameKind.OFFLINE)
            self._stop.wait(self._card_interval)
            return
        self._publish(encoded)

    def _publish(self, encoded: EncodedFrame) -> None:
        with self._publish_lock:
            if self._paused:  # paused while this frame was being encoded: drop it
                return
            self._channel.publish(encoded)
            self._last_card = None
            self.frames_published += 1

    def _publish_card(self, kind: FrameKind, *, force: bool = False) -> None:
        with self._publish_lock:
            if self._paused:
                kind = FrameKind.PAUSED
            self._publish_card_locked(kind, force=force)

    def _publish_card_locked(self, kind: FrameKind, *, force: bool) -> None:
        last = self._last_card
        stamp = time.monotonic()
        fresh = last is not None and last[0] is kind and stamp - last[1] < self._card_interval
        if fresh and not force:
            return
        self._channel.publish(self._pipeline.card(kind, self._clock()))
        self._last_card = (kind, stamp)
