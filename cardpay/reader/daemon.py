"""The reader daemon beside each till: a card read becomes a journaled tap, a verdict
from the server (or, when it cannot answer in time, from the cached snapshot), and the
reader's green light and one beep, or red light and two beeps.

Three threads: the reader loop (read, journal, send or decide, feedback), the replayer
(sends journaled taps the server has not answered, in order, once it is back) and the
snapshot refresher (keeps the offline snapshot fresh on disk and writes a heartbeat).
It talks to the server over HTTP only and never loads the database layer.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cardpay.reader import offline
from cardpay.reader.client import ServerUnreachable, TapNotAccepted, TillClient
from cardpay.reader.journal import Journal, JournaledTap, JournalError
from cardpay.reader.uplink import Clock, Uplink, Verdict, describe, utcnow
from hardware.errors import CardProtocolError, CardRemoved, HardwareError, ReaderUnavailable
from hardware.readers import CardRead, CardReader

logger = logging.getLogger(__name__)

_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DaemonSettings:
    deadline: float = 1.5  # seconds a live tap waits for the server before deciding alone
    offline_deadline: float = 0.3  # the same while the server has just failed to answer
    snapshot_every: float = 30.0
    replay_every: float = 2.0
    heartbeat_every: float = 10.0
    request_timeout: float = 5.0  # for replays and snapshots, which nobody waits on
    keep_sent: timedelta = timedelta(days=7)


class ReaderDaemon:
    """Runs one reader for one till until :meth:`stop`."""

    def __init__(
        self,
        *,
        reader: CardReader,
        journal: Journal,
        server: str,
        token: str,
        snapshot_path: Path,
        transport: httpx.BaseTransport | None = None,
        clock: Clock = utcnow,
        settings: DaemonSettings | None = None,
    ) -> None:
        self.settings = settings or DaemonSettings()
        self._reader, self._journal, self._clock = reader, journal, clock
        timeout = self.settings.request_timeout
        self._snapshot_client = TillClient(server, token, transport=transport, timeout=timeout)
        self.uplink = Uplink(
            journal, TillClient(server, token, transport=transport, timeout=timeout), clock=clock
        )
        self._store = offline.SnapshotStore(snapshot_path)
        self.snapshot = self._store.load()
        self._stop = threading.Event()
        self._wake_replay = threading.Event()
        self._wake_refresh = threading.Event()
        self._threads: list[threading.Thread] = []
        journal.set_meta("reader", reader.name)
        journal.set_meta("server", server)
        journal.set_meta("started_at", clock().isoformat())

    # -- lifecycle ---------------------------------------------------------------------

    def run(self) -> None:
        """Serve taps until :meth:`stop`; the background threads run meanwhile."""
        self.start_background()
        logger.info("reader daemon on %s started (queue: %d)", self._reader.name, self.queue())
        try:
            while not self._stop.is_set():
                read = self._next_card()
                if read is not None:
                    self.handle(read)
        finally:
            self.stop()
            for thread in self._threads:
                thread.join(timeout=self.settings.request_timeout + 1)
            self._snapshot_client.close()
            self.uplink.close()
            logger.info("reader daemon on %s stopped", self._reader.name)

    def start_background(self) -> None:
        for name, target in (("replay", self._replay_loop), ("snapshot", self._refresh_loop)):
            thread = threading.Thread(target=target, name=f"reader-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Ask every thread to finish (from any thread, or a signal handler)."""
        self._stop.set()
        self._wake_replay.set()
        self._wake_refresh.set()
        self._reader.close()

    def queue(self) -> int:
        return self._journal.queue_length()

    def last_sync(self) -> datetime | None:
        """When the server last answered: a tap sent, or a snapshot fetched."""
        times = [self._journal.last_sent_at(), self.snapshot.fetched_at if self.snapshot else None]
        return max((t for t in times if t is not None), default=None)

    # -- the reader loop ---------------------------------------------------------------

    def _next_card(self) -> CardRead | None:
        try:
            return self._reader.wait_for_card(1.0)
        except CardRemoved as exc:
            logger.warning("card lifted mid-read (%s): no tap recorded, waiting for the next", exc)
        except CardProtocolError as exc:
            logger.warning("unreadable answer from card or reader (%s): no tap recorded", exc)
        except ReaderUnavailable as exc:
            logger.warning("reader unavailable (%s); retrying", exc)
            self._stop.wait(1.0)
        except HardwareError as exc:
            logger.error("reader error (%s); retrying", exc)
            self._stop.wait(1.0)
        return None

    def handle(self, read: CardRead) -> Verdict:
        """Journal the tap, get its verdict, show it. Returns the verdict."""
        started = time.monotonic()
        card: dict[str, Any] = {"uid": read.uid.hex().upper(), "kind": read.kind.value}
        if read.sun_url:
            card["sun_url"] = read.sun_url
        try:
            tap = self._journal.record(card, self._clock())
            journaled = time.monotonic()
        except JournalError as exc:
            logger.error("%s: the tap is refused, nothing was recorded", exc)
            self._feedback(False)
            return {"accepted": False, "reason": "journal_error"}
        shown = [0.0]

        def show(verdict: Verdict) -> None:
            self._show(verdict)
            shown[0] = time.monotonic()

        with self.uplink.live(tap):
            verdict = self.uplink.send_live(tap, started + self._deadline(), show)
            online = verdict is not None
            if verdict is None:
                verdict = self._decide_offline(tap)
                self._journal.set_offline_verdict(tap.tap_id, verdict)
                show(verdict)
        if not online:
            self._wake_replay.set()
        logger.info(
            "tap %s, card %s (%s): %s %s in %.0f ms (journal %.0f ms, then shown after %.0f ms)",
            tap.tap_id,
            read.masked_uid,
            read.kind.value,
            describe(verdict),
            "online" if online else "OFFLINE",
            (time.monotonic() - started) * 1000,
            (journaled - started) * 1000,
            (shown[0] - journaled) * 1000,
        )
        return verdict

    def _deadline(self) -> float:
        recently_failed = (
            time.monotonic() - self.uplink.last_failure_at < self.settings.replay_every
        )
        if self.uplink.online is False and recently_failed:
            return self.settings.offline_deadline
        return self.settings.deadline

    def _decide_offline(self, tap: JournaledTap) -> Verdict:
        snapshot = self.snapshot
        window = snapshot.retap_window if snapshot else offline.DEFAULT_RETAP_WINDOW
        known = self._journal.known_taps(
            read_after=tap.read_at - window,
            sent_after=snapshot.fetched_at if snapshot else _NEVER,
        )
        return offline.decide(snapshot, tap.card, tap.read_at, known)

    def _show(self, verdict: Verdict) -> None:
        self._feedback(bool(verdict.get("accepted")))

    def _feedback(self, accepted: bool) -> None:
        try:
            self._reader.feedback(accepted)
        except HardwareError as exc:  # drivers should not raise here; never stop the till
            logger.warning("no LED/buzzer feedback: %s", exc)

    # -- background threads ------------------------------------------------------------

    def _replay_loop(self) -> None:
        while not self._stop.is_set():
            self._wake_replay.wait(self.settings.replay_every)
            self._wake_replay.clear()
            if self._stop.is_set():
                return
            if self.queue() == 0:
                continue
            sent = self.uplink.replay(timeout=self.settings.request_timeout)
            if sent:
                logger.info("replayed %d journaled taps; %d still queued", sent, self.queue())
                self._wake_refresh.set()  # what was charged meanwhile is in the next one

    def _refresh_loop(self) -> None:
        last_refresh = last_prune = -1e9
        while not self._stop.is_set():
            now = time.monotonic()
            due = now - last_refresh >= self.settings.snapshot_every
            if due or self._wake_refresh.is_set():
                self._wake_refresh.clear()
                if self.refresh_snapshot():
                    last_refresh = now
            if now - last_prune >= 3600:
                self._journal.prune(self._clock() - self.settings.keep_sent)
                last_prune = now
            self._journal.set_meta("alive_at", self._clock().isoformat())
            self._wake_refresh.wait(self.settings.heartbeat_every)

    def refresh_snapshot(self) -> bool:
        """Fetch, check and store a fresh snapshot; False when that was not possible."""
        fetched_at = self._clock()
        try:
            data = self._snapshot_client.snapshot(queue=self.queue(), last_sync=self.last_sync())
            snapshot = offline.Snapshot(data, fetched_at)
        except ServerUnreachable as exc:
            logger.debug("no fresh snapshot: %s", exc)
            return False
        except (TapNotAccepted, KeyError, TypeError, ValueError) as exc:
            logger.error("the server's snapshot cannot be used (%r); keeping the old one", exc)
            return False
        self._store.save(snapshot)
        self.snapshot = snapshot
        self._journal.set_meta("snapshot_at", fetched_at.isoformat())
        logger.debug("snapshot refreshed: %d cards", len(snapshot.cards))
        return True
