"""The viewing log's writer: every view is recorded when it opens and completed when it ends.

Writes go through one background thread that commits whatever has queued up in one
transaction, so a thousand parents opening the same room at 8:30 cost a few commits, not
a thousand, and the event loop never waits on the database. A stream is only served once
its opening row is committed (`opened` returns a future of the row's id); its end is
queued and written shortly after. `close` writes everything still queued.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from webcam.models import CameraView

logger = logging.getLogger(__name__)

BATCH = 500


@dataclass
class _Open:
    view: CameraView
    done: Future[int]


@dataclass(frozen=True)
class _Close:
    view_id: int
    at: datetime
    reason: str
    extend: bool = False  # move an end already written (a snapshot entry's)


class ViewLog:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.Queue[_Open | _Close | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="viewlog", daemon=True)
                self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def opened(self, view: CameraView) -> Future[int]:
        """Queue the opening row; the future gives its id once committed."""
        self.start()
        done: Future[int] = Future()
        self._queue.put(_Open(view, done))
        return done

    def closed(self, view_id: int, at: datetime, reason: str, *, extend: bool = False) -> None:
        """Queue the view's end; `extend`: even if an end was written already."""
        self._queue.put(_Close(view_id, at, reason[:32], extend))

    def _run(self) -> None:
        stop = False
        while not stop or not self._queue.empty():
            batch: list[_Open | _Close] = []
            item = self._queue.get()
            while True:
                if item is None:
                    stop = True  # still write what was queued before and after it
                else:
                    batch.append(item)
                if len(batch) >= BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)

    def _write(self, batch: list[_Open | _Close]) -> None:
        opens = [op for op in batch if isinstance(op, _Open)]
        closes = [op for op in batch if isinstance(op, _Close)]
        try:
            with Session(self._engine, expire_on_commit=False) as session:
                session.add_all([op.view for op in opens])
                for close in closes:
                    query = update(CameraView).where(col(CameraView.id) == close.view_id)
                    if not close.extend:
                        query = query.where(col(CameraView.ended_at).is_(None))
                    session.exec(query.values(ended_at=close.at, end_reason=close.reason))
                session.commit()
        except Exception as exc:
            logger.exception("could not write %s viewing-log entries", len(batch))
            for op in opens:
                op.done.set_exception(exc)
            return
        for op in opens:
            assert op.view.id is not None
            op.done.set_result(op.view.id)
