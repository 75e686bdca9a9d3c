"""The till's local journal: every tap is on disk, with its own id, before anything else.

A SQLite file with `synchronous=FULL`: once `record()` returns, the tap survives a power
cut or a SIGKILL. Taps are replayed to the server in the order they were read; the server
applies each tap id once, so replaying one it already has is harmless. A row whose content
cannot be read is moved to a quarantine table and reported, never silently dropped; a file
that is not a database any more is renamed aside and a fresh journal started.

One `Journal` may be shared by the daemon's threads: every call holds its lock.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tap (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tap_id TEXT NOT NULL UNIQUE,
    read_at TEXT NOT NULL,
    card TEXT NOT NULL,
    offline_verdict TEXT,
    server_verdict TEXT,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS ix_tap_unsent ON tap (seq) WHERE sent_at IS NULL;
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,
    tap_id TEXT,
    raw TEXT,
    reason TEXT NOT NULL,
    moved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class JournalError(Exception):
    """The journal cannot be written: the tap must not be acknowledged."""


@dataclass(frozen=True)
class JournaledTap:
    seq: int
    tap_id: str
    read_at: datetime
    card: dict[str, Any]
    offline_verdict: dict[str, Any] | None


@dataclass(frozen=True)
class KnownTap:
    """A tap with whatever verdicts it has, for deciding the next ones offline."""

    read_at: datetime
    card: dict[str, Any]
    offline_verdict: dict[str, Any] | None
    server_verdict: dict[str, Any] | None
    sent_at: datetime | None

    @property
    def verdict(self) -> dict[str, Any] | None:
        """The server's verdict when it gave one, else the till's own."""
        return self.server_verdict or self.offline_verdict


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            db = self._connect()
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
            return db
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(
                f"{self.path.name}.corrupt-{datetime.now(UTC):%Y%m%dT%H%M%S}"
            )
            logger.error(
                "journal %s is unreadable (%s): moved to %s; starting a new one",
                self.path,
                exc,
                aside,
            )
            self.path.rename(aside)
            for suffix in ("-wal", "-shm"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(self, card: dict[str, Any], read_at: datetime) -> JournaledTap:
        """Write a new tap durably and return it with its fresh id."""
        with self._lock:
            tap_id = str(uuid.uuid4())
            try:
                cur = self._db.execute(
                    "INSERT INTO tap (tap_id, read_at, card) VALUES (?, ?, ?)",
                    (tap_id, read_at.astimezone(UTC).isoformat(), json.dumps(card)),
                )
            except sqlite3.Error as exc:
                raise JournalError(f"cannot write the tap to {self.path}: {exc}") from exc
            return JournaledTap(int(cur.lastrowid or 0), tap_id, read_at, card, None)

    def set_offline_verdict(self, tap_id: str, verdict: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE tap SET offline_verdict = ? WHERE tap_id = ?", (json.dumps(verdict), tap_id)
            )

    def mark_sent(self, tap_id: str, verdict: dict[str, Any], at: datetime) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE tap SET server_verdict = ?, sent_at = ? WHERE tap_id = ?",
                (json.dumps(verdict), at.astimezone(UTC).isoformat(), tap_id),
            )

    def unsent(self, limit: int = 500) -> list[JournaledTap]:
        """Taps the server has not answered yet, oldest first; unreadable rows are
        moved to quarantine on the way."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, tap_id, read_at, card, offline_verdict FROM tap "
                "WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            taps = []
            for seq, tap_id, read_at, card, offline in rows:
                try:
                    taps.append(
                        JournaledTap(
                            seq,
                            tap_id,
                            datetime.fromisoformat(read_at),
                            json.loads(card),
                            json.loads(offline) if offline else None,
                        )
                    )
                except (ValueError, TypeError) as exc:
                    self._quarantine(seq, tap_id, f"{read_at!r} {card!r}", str(exc))
            return taps

    def _quarantine(self, seq: int, tap_id: str, raw: str, reason: str) -> None:
        with self._lock:  # already held by unsent(); kept so the method stands alone
            logger.error(
                "journal row %s (tap %s) cannot be read (%s): moved to quarantine",
                seq,
                tap_id,
                reason,
            )
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR REPLACE INTO quarantine (seq, tap_id, raw, reason, moved_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (seq, tap_id, raw, reason, datetime.now(UTC).isoformat()),
            )
            self._db.execute("DELETE FROM tap WHERE seq = ?", (seq,))
            self._db.execute("COMMIT")

    def quarantined(self) -> list[tuple[int, str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT seq, tap_id, reason FROM quarantine ORDER BY seq")
            return [(int(seq), str(tap_id), str(reason)) for seq, tap_id, reason in rows]

    def prune(self, sent_before: datetime) -> int:
        """Forget taps the server answered before `sent_before`; the server keeps them."""
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM tap WHERE sent_at IS NOT NULL AND sent_at < ?",
                (sent_before.astimezone(UTC).isoformat(),),
            )
            return cur.rowcount

    def queue_length(self) -> int:
        with self._lock:
            return int(
                self._db.execute("SELECT count(*) FROM tap WHERE sent_at IS NULL").fetchone()[0]
            )

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

    def known_taps(self, *, read_after: datetime, sent_after: datetime) -> list[KnownTap]:
        """Taps read after `read_after` and those the server may not have counted yet
        (unsent, or sent after `sent_after`), oldest first; unreadable rows are skipped
        here and quarantined by `unsent()`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT read_at, card, offline_verdict, server_verdict, sent_at FROM tap "
                "WHERE read_at > ? OR sent_at IS NULL OR sent_at > ? ORDER BY seq",
                (
                    read_after.astimezone(UTC).isoformat(),
                    sent_after.astimezone(UTC).isoformat(),
                ),
            ).fetchall()
        taps = []
        for read_at, card, offline, server, sent_at in rows:
            try:
                taps.append(
                    KnownTap(
                        datetime.fromisoformat(read_at),
                        json.loads(card),
                        json.loads(offline) if offline else None,
                        json.loads(server) if server else None,
                        datetime.fromisoformat(sent_at) if sent_at else None,
                    )
                )
            except (ValueError, TypeError):
                continue
        return taps

    def last_sent_at(self) -> datetime | None:
        """When the server last answered a tap from this journal."""
        with self._lock:
            row = self._db.execute("SELECT max(sent_at) FROM tap").fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None
