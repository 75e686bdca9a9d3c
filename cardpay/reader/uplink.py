"""Sending journaled taps to the server, strictly in the order they were read.

One lock covers every send, so the live tap and the background replay never overtake
each other: a live tap goes out after any older unsent ones, within its deadline. Order
matters beyond bookkeeping: an NTAG 424 DNA read counter sent out of order would look
like a replay to the server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from cardpay.reader.client import ServerUnreachable, TapNotAccepted, TillClient, TokenRejected
from cardpay.reader.journal import Journal, JournaledTap

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


logger = logging.getLogger(__name__)

Verdict = dict[str, Any]
BATCH = 200


class Uplink:
    """Sends the journal's unsent taps; knows whether the server answered last time."""

    def __init__(self, journal: Journal, client: TillClient, *, clock: Clock = utcnow) -> None:
        self._journal, self._client, self._clock = journal, client, clock
        self._lock = threading.Lock()
        self._live_waiting = threading.Event()
        self._live_seq: int | None = None
        self.online: bool | None = None  # unknown until the first exchange
        self.last_failure_at = 0.0  # time.monotonic()

    @contextmanager
    def live(self, tap: JournaledTap) -> Iterator[None]:
        """While the till handles `tap` itself, the replayer leaves it (and later taps)
        alone: it must not send it live after the till has decided it offline."""
        self._live_seq = tap.seq
        try:
            yield
        finally:
            self._live_seq = None

    def send_live(
        self, tap: JournaledTap, deadline: float, show: Callable[[Verdict], None]
    ) -> Verdict | None:
        """Send older unsent taps, then `tap`, before `deadline` (``time.monotonic()``);
        call `show` with its verdict before the journal marks it sent. None: no verdict
        in time (the caller decides offline; the tap stays queued)."""
        self._live_waiting.set()
        try:
            if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return None
        finally:
            self._live_waiting.clear()
        try:
            if not self._send_backlog(deadline, before_seq=tap.seq):
                return None
            verdict = self._post(tap, deadline)
            if verdict is None:
                return None
            show(verdict)
            self._journal.mark_sent(tap.tap_id, verdict, self._clock())
            return verdict
        finally:
            self._lock.release()

    def replay(self, timeout: float | None = None) -> int:
        """Send every unsent tap in order, giving way to live taps; the number sent.
        Stops at the first failure: the next call starts again from that tap."""
        sent = 0
        while True:
            if self._live_waiting.is_set():
                time.sleep(0.005)  # a live tap is waiting for the lock: let it go first
                continue
            with self._lock:
                taps = self._journal.unsent(limit=1)
                live = self._live_seq
                if not taps or (live is not None and taps[0].seq >= live):
                    return sent
                deadline = None if timeout is None else time.monotonic() + timeout
                if self._post(taps[0], deadline, mark=True) is None:
                    return sent
                sent += 1

    def _send_backlog(self, deadline: float, before_seq: int) -> bool:
        """Send unsent taps older than `before_seq`; False when one could not be sent."""
        while True:
            backlog = [t for t in self._journal.unsent(limit=BATCH) if t.seq < before_seq]
            if not backlog:
                return True
            for tap in backlog:
                if self._post(tap, deadline, mark=True) is None:
                    return False

    def _post(
        self, tap: JournaledTap, deadline: float | None, *, mark: bool = False
    ) -> Verdict | None:
        try:
            verdict = self._client.post_tap(tap, deadline=deadline)
        except TapNotAccepted as exc:
            # Retrying would never succeed and would block every later tap: set it
            # aside with the reason, loudly.
            logger.error("the server will not take tap %s: %s; not retried", tap.tap_id, exc)
            verdict = {"accepted": False, "reason": "not_accepted", "error": str(exc)}
            self._journal.mark_sent(tap.tap_id, verdict, self._clock())
            return verdict
        except ServerUnreachable as exc:
            self._went_offline(exc)
            return None
        self._came_online()
        if mark:
            self._journal.mark_sent(tap.tap_id, verdict, self._clock())
            if tap.offline_verdict is not None:
                logger.info(
                    "replayed tap %s decided offline (%s): server says %s",
                    tap.tap_id,
                    "accepted" if tap.offline_verdict.get("accepted") else "refused",
                    verdict.get("reason"),
                )
        return verdict

    def close(self) -> None:
        self._client.close()

    def _went_offline(self, exc: ServerUnreachable) -> None:
        self.last_failure_at = time.monotonic()
        if self.online is not False:
            level = logging.ERROR if isinstance(exc, TokenRejected) else logging.WARNING
            logger.log(level, "server unreachable (%s): deciding taps offline", exc)
            self._set_state("offline", str(exc))
        self.online = False

    def _came_online(self) -> None:
        if self.online is not True:
            logger.info("server reachable: taps go online")
            self._set_state("online", "")
        self.online = True

    def _set_state(self, state: str, error: str) -> None:
        now = self._clock().isoformat()
        self._journal.set_meta("server_state", state)
        self._journal.set_meta("server_state_since", now)
        if error:
            self._journal.set_meta("last_error", f"{now} {error}")


def describe(verdict: Verdict) -> str:
    """A verdict in a few words for the log (no UID, no name)."""
    word = "accepted" if verdict.get("accepted") else "refused"
    extras = [str(verdict.get("reason", ""))]
    if verdict.get("repeat"):
        extras.append("repeat")
    if verdict.get("alert"):
        extras.append("ALERT")
    return f"{word} ({', '.join(e for e in extras if e)})"
