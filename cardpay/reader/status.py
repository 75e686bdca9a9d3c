"""What `moulin reader status` shows, read from a daemon's journal by another process:
is the server answering, how many taps wait to be sent, when it last synced."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class ReaderStatus:
    reader: str | None
    server: str | None
    server_state: str | None  # "online", "offline", or None before the first exchange
    state_since: datetime | None
    last_error: str | None
    queue: int
    quarantined: int
    last_sent_at: datetime | None
    snapshot_at: datetime | None
    alive_at: datetime | None

    @property
    def last_sync(self) -> datetime | None:
        """The last time the server answered: a tap sent, or a snapshot fetched."""
        times = [t for t in (self.last_sent_at, self.snapshot_at) if t is not None]
        return max(times) if times else None

    def lines(self, now: datetime) -> list[str]:
        def ago(at: datetime | None) -> str:
            if at is None:
                return "never"
            return f"{at:%Y-%m-%d %H:%M:%S} UTC ({(now - at).total_seconds():.0f} s ago)"

        state = self.server_state or "not contacted yet"
        lines = [
            f"reader:        {self.reader or '?'}",
            f"server:        {self.server or '?'}: {state}"
            + (f" since {ago(self.state_since)}" if self.state_since else ""),
            f"queue:         {self.queue} tap(s) waiting to be sent",
            f"last sync:     {ago(self.last_sync)}",
            f"snapshot age:  {ago(self.snapshot_at)}",
            f"daemon alive:  {ago(self.alive_at)}",
        ]
        if self.quarantined:
            lines.append(f"quarantined:   {self.quarantined} unreadable journal row(s)")
        if self.last_error:
            lines.append(f"last error:    {self.last_error}")
        return lines


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def read_status(journal_path: Path) -> ReaderStatus:
    """Read-only: works while the daemon runs, and never changes its journal."""
    if not journal_path.exists():
        raise FileNotFoundError(f"no journal at {journal_path}: has the daemon run here?")
    db = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True, timeout=5)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        queue = db.execute("SELECT count(*) FROM tap WHERE sent_at IS NULL").fetchone()[0]
        quarantined = db.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        last_sent = db.execute("SELECT max(sent_at) FROM tap").fetchone()[0]
    finally:
        db.close()
    return ReaderStatus(
        reader=meta.get("reader"),
        server=meta.get("server"),
        server_state=meta.get("server_state"),
        state_since=_time(meta.get("server_state_since")),
        last_error=meta.get("last_error"),
        queue=int(queue),
        quarantined=int(quarantined),
        last_sent_at=_time(last_sent),
        snapshot_at=_time(meta.get("snapshot_at")),
        alive_at=_time(meta.get("alive_at")),
    )
