"""Group commit for SQLite: one writer thread applies queued writes, each inside its own
SAVEPOINT, and commits them together, so that many taps share one fsync.

SQLite lets one connection write at a time, and a durable commit (`synchronous=FULL`)
costs an fsync of a few milliseconds. Threads that each open their own `BEGIN IMMEDIATE`
queue on the database lock through the busy handler, which sleeps and polls; here they
queue in memory instead, and the writer takes whatever has arrived while the last batch
was committing:

    BEGIN IMMEDIATE
      SAVEPOINT  work 1  RELEASE        (a work that raises is rolled back alone:
      SAVEPOINT  work 2  ROLLBACK TO     its caller gets the exception)
      ...
    COMMIT                              one fsync, then every caller gets its result

A caller's `submit` returns only after the COMMIT, so what it was told is on disk.
If the COMMIT itself fails (a deferred constraint, a full disk), nothing of the batch
was written, and each work is run again in a transaction of its own, so that one bad
write cannot spoil the others. Other processes and other connections still write in
their own transactions; they and the writer take turns on SQLite's lock.

The writer copies the WAL into the database itself, between batches, about once a
second (not inside a commit, so no caller waits for it but those queued meanwhile).
Being the only writer, right after its own commit, it lets the checkpoint catch up with
the log, so the next batch starts the log again from its beginning. Checkpoints made
by another thread while this one kept writing never caught up: under a steady stream of
taps the WAL grew by some 30 KB a tap for as long as they came, and every read and
write got slower with it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from school.db import SavepointLostError, driver_savepoint

logger = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[Connection], T]

MAX_BATCH = 64
SLOW_BATCH_S = 0.1  # worth a line in the log: the disk or another writer held us up
CHECKPOINT_EVERY_S = 1.0


@dataclass
class _Item(Generic[T]):
    work: Work[T]
    future: Future[T] = field(default_factory=Future)


_STOP: Any = object()


class GroupCommitter:
    """Runs `submit`ted writes on one thread, committed in batches."""

    def __init__(self, engine: Engine, *, max_batch: int = MAX_BATCH,
                 checkpoint_every: float = CHECKPOINT_EVERY_S, name: str = "writer") -> None:
        if engine.dialect.name != "sqlite":
            raise ValueError("group commit is for SQLite, whose writers take turns anyway")
        self._engine = engine.execution_options(moulin_sqlite_begin="BEGIN IMMEDIATE")
        self._max_batch, self._checkpoint_every, self._name = max_batch, checkpoint_every, name
        self._queue: queue.SimpleQueue[_Item[Any]] = queue.SimpleQueue()
        self._conn: Connection | None = None
        self._threads: list[threading.Thread] = []
        self._start = threading.Lock()
        self._stopping = threading.Event()
        self._checkpointed = time.monotonic()
        self.batches = 0  # committed batches, for tests and benchmarks

    def submit(self, work: Work[T]) -> T:
        """Run `work(connection)` in the next batch; its result once committed, or the
        exception it (or the commit) raised, in which case nothing of it was written."""
        return self.enqueue(work).result()

    def enqueue(self, work: Work[T]) -> Future[T]:
        """`submit` without waiting: the future is done once the batch is committed.
        Cancelling it before the writer takes it up means it is never run."""
        item: _Item[T] = _Item(work)
        with self._start:  # not while close() resets the writer
            self._start_threads()
            self._queue.put(item)
        return item.future

    def start(self) -> None:
        """Start the threads now and open the writer's connection, rather than with the
        first write (which would then wait for both)."""
        with self._start:
            self._start_threads()

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def stop(self) -> None:
        """Finish the queued writes, then stop (without waiting: callable from anywhere)."""
        self._stopping.set()
        self._queue.put(_STOP)

    def close(self) -> None:
        """Finish the queued writes and wait for the threads to end. The next `submit`
        starts them again (an app may be started and stopped more than once)."""
        self.stop()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=30)
        with self._start:
            if not any(thread.is_alive() for thread in self._threads):
                self._threads = []
                self._queue = queue.SimpleQueue()  # without stop marks left unread
                self._stopping.clear()

    def _start_threads(self) -> None:
        if self._stopping.is_set():
            raise RuntimeError("the writer is stopped")
        if self._threads:
            return
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- the writer thread -----------------------------------------------------------

    def _run(self) -> None:
        try:
            try:
                self._connection()
            except Exception:  # the first batch tries again and reports it to its callers
                logger.warning("the writer could not open its connection", exc_info=True)
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        self._queue.put(_STOP)  # after this batch
                        break
                    batch.append(item)
                batch = [i for i in batch if i.future.set_running_or_notify_cancel()]
                if batch:
                    self._commit(batch)
                    self._checkpoint()
        finally:
            self._close_connection()

    def _commit(self, batch: list[_Item[Any]]) -> None:
        began = time.monotonic()
        try:
            conn = self._connection()
            transaction = conn.begin()  # BEGIN IMMEDIATE: waits out the busy timeout
        except Exception as exc:
            self._close_connection()
            for item in batch:
                item.future.set_exception(exc)
            return
        locked = time.monotonic()
        try:
            outcomes = [self._apply(conn, item) for item in batch]
            applied = time.monotonic()
            transaction.commit()
        except Exception as exc:
            self._close_connection()
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            logger.warning("a batch of %d writes failed to commit (%r); retrying one by one",
                           len(batch), exc)
            for item in batch:
                self._commit([item])
            return
        self.batches += 1
        done = time.monotonic()
        if done - began > SLOW_BATCH_S:
            logger.warning(
                "slow batch of %d writes: %.0f ms waiting for the lock, %.0f ms writing, "
                "%.0f ms committing", len(batch), (locked - began) * 1000,
                (applied - locked) * 1000, (done - applied) * 1000,
            )
        for item, (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                item.future.set_result(value)
            else:
                item.future.set_exception(value)

    @staticmethod
    def _apply(conn: Connection, item: _Item[Any]) -> tuple[bool, Any]:
        # A savepoint on the driver (see school.db.driver_savepoint): SQLAlchemy's cost the
        # writer more than a tap's own statements. If rolling back to it fails too, the
        # batch is abandoned and retried, each work alone (see _commit).
        try:
            with driver_savepoint(conn):
                result = item.work(conn)
        except SavepointLostError:
            raise
        except Exception as exc:
            return False, exc
        return True, result

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self._engine.connect()
            # Checkpoints are made between batches (see the module docstring).
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_autocheckpoint=0"
            )
            self._conn = conn
        return self._conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.invalidate()  # never hand a connection without autocheckpoint back
                conn.close()
            except Exception:
                logger.debug("closing the writer's connection failed", exc_info=True)

    def _checkpoint(self) -> None:
        """Copy the log into the database if the last copy is `checkpoint_every` old."""
        now = time.monotonic()
        if self._conn is None or now - self._checkpointed < self._checkpoint_every:
            return
        self._checkpointed = now
        try:
            # PASSIVE: copies what no reader still needs; never waits for a lock.
            self._conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_checkpoint(PASSIVE)"
            )
        except Exception:
            logger.warning("WAL checkpoint failed", exc_info=True)
