"""Sending the e-mails queued in `OutboxEmail`, from a background thread, over SMTP.

Each e-mail is claimed for a few minutes (so that two server processes do not both send
it), sent with no database transaction open (so a slow mail server holds no lock), then
marked sent. A crash after sending and before marking sends that e-mail again once its
claim runs out: at least once, never lost. Failures are retried with a growing delay;
e-mails that cannot be sent within `MAX_AGE` are abandoned, since a stale balance alert
misleads more than it helps.

A row whose `kind` is not 'mail' is a job: the worker's writer for that kind writes the
e-mail when it is claimed (a password-reset link is minted then, so the outbox never
holds it), or says there is nothing to send (the row is then closed, unsent).
"""

from __future__ import annotations

import logging
import smtplib
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import ColumnElement
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, or_, select

from cardpay import alerts
from cardpay.account_models import OutboxEmail
from school.clock import Clock, utcnow
from school.db import immediate_session

logger = logging.getLogger(__name__)

CLAIM = timedelta(minutes=5)
MAX_AGE = timedelta(hours=48)
MAX_ATTEMPTS = 8
BATCH = 20


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 25
    sender: str = "moulin@localhost"
    username: str = ""
    password: str = ""
    starttls: bool = False
    timeout_seconds: float = 10.0
    footer: str = ""  # e.g. the portal's address, added under every e-mail

    def __repr__(self) -> str:  # never show the password in a log or traceback
        return f"SmtpConfig(host={self.host!r}, port={self.port})"


@dataclass(frozen=True)
class Outgoing:
    id: int
    to_address: str
    subject: str
    body: str


MAIL = "mail"
# Writes the e-mail of a job row in the claiming transaction, or None: nothing to send.
Writer = Callable[[Session, OutboxEmail, datetime], Outgoing | None]


def send(config: SmtpConfig, email: Outgoing) -> None:
    """Hand one e-mail to the SMTP server; OSError or SMTPException on failure."""
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = email.to_address
    message["Subject"] = email.subject
    message.set_content(email.body + (f"\n{config.footer}\n" if config.footer else ""))
    with smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds) as smtp:
        if config.starttls:
            smtp.starttls()
        if config.username:
            smtp.login(config.username, config.password)
        smtp.send_message(message)


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (col(OutboxEmail.sent_at).is_(None), col(OutboxEmail.abandoned_at).is_(None),
            col(OutboxEmail.next_attempt_at) <= now,
            or_(col(OutboxEmail.claimed_until).is_(None), col(OutboxEmail.claimed_until) < now))


def anything_due(session: Session, *, clock: Clock = utcnow) -> bool:
    """Whether an e-mail is waiting to be sent, found with a read alone (see `drain`)."""
    found = session.exec(select(OutboxEmail.id).where(*_due(clock())).limit(1)).first()
    session.rollback()
    return found is not None


def claim(session: Session, *, clock: Clock = utcnow, limit: int = BATCH,
          writers: Mapping[str, Writer] | None = None) -> list[Outgoing]:
    """Claim the e-mails due now, abandoning those too old to send, and write those of
    job rows with `writers`; commit."""
    now = clock()
    due = session.exec(
        select(OutboxEmail).where(*_due(now)).order_by(col(OutboxEmail.id)).limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for row in due:
        if now - row.created_at > MAX_AGE:
            row.abandoned_at, row.last_error = now, "too old to send"
            logger.warning("outbox e-mail %s abandoned: queued %s ago", row.id,
                           now - row.created_at)
        else:
            assert row.id is not None
            email = _written(session, row, now, writers or {})
            if email is None:
                row.abandoned_at, row.last_error = now, "nothing to send"
            else:
                row.claimed_until = now + CLAIM
                claimed.append(email)
        session.add(row)
    session.commit()
    return claimed


def _written(session: Session, row: OutboxEmail, now: datetime,
             writers: Mapping[str, Writer]) -> Outgoing | None:
    if row.kind == MAIL:
        assert row.id is not None
        return Outgoing(row.id, row.to_address, row.subject, row.body)
    writer = writers.get(row.kind)
    if writer is None:
        logger.warning("outbox job %s of kind %r has no writer here", row.id, row.kind)
        return None
    return writer(session, row, now)


def settle(session: Session, email_id: int, error: str | None, *,
           clock: Clock = utcnow) -> None:
    """Mark an e-mail sent, or failed (retried later, or abandoned); commit."""
    row = session.get(OutboxEmail, email_id)
    if row is None:
        return
    now = clock()
    row.attempts += 1
    row.claimed_until = None
    if error is None:
        row.sent_at = now
    else:
        row.last_error = error[:500]
        row.next_attempt_at = now + timedelta(minutes=2 ** min(row.attempts, 10))
        if row.attempts >= MAX_ATTEMPTS:
            row.abandoned_at = now
    session.add(row)
    session.commit()


SessionFactory = Callable[[], AbstractContextManager[Session]]


def drain(sessions: SessionFactory, config: SmtpConfig, *, clock: Clock = utcnow,
          writers: Mapping[str, Writer] | None = None) -> int:
    """Send everything due; return how many were sent."""
    sent = 0
    while True:
        with sessions() as session:
            batch = claim(session, clock=clock, writers=writers)
        if not batch:
            return sent
        for email in batch:
            error = _try_send(config, email)
            with sessions() as session:
                settle(session, email.id, error, clock=clock)
            sent += error is None


def _try_send(config: SmtpConfig, email: Outgoing) -> str | None:
    try:
        send(config, email)
    except (OSError, smtplib.SMTPException) as exc:
        logger.warning("outbox e-mail %s not sent: %s", email.id, type(exc).__name__)
        return f"{type(exc).__name__}: {exc}"
    logger.info("outbox e-mail %s sent", email.id)
    return None


class OutboxWorker:
    """A daemon thread that drains the outbox every `interval` seconds, or at once when
    woken, and sweeps for alerts a crash left out every `sweep_every` seconds."""

    def __init__(self, engine: Engine, config: SmtpConfig, *, interval: float = 5.0,
                 sweep_every: float = 60.0, clock: Clock = utcnow,
                 writers: Mapping[str, Writer] | None = None) -> None:
        self._engine, self._config, self._clock = engine, config, clock
        self._writers = dict(writers or {})
        self._interval, self._sweep_every = interval, sweep_every
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="moulin-outbox", daemon=True)

    def _sessions(self) -> AbstractContextManager[Session]:
        return immediate_session(self._engine)

    def _read(self, question: Callable[..., bool]) -> bool:
        with Session(self._engine) as session:
            return question(session, clock=self._clock)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        next_sweep = 0.0  # sweep at once: a start may follow a crash
        while not self._stop.is_set():
            now = time.monotonic()
            sweep = now >= next_sweep
            if sweep:
                next_sweep = now + self._sweep_every
            self._tick(sweep=sweep)
            self._wake.wait(self._interval)
            self._wake.clear()

    def _tick(self, *, sweep: bool) -> None:
        # Each step looks with a read before it writes: the till's writer needs SQLite's
        # one write lock at every tap, and a pass with nothing to do must not take it.
        try:
            if sweep and self._read(alerts.sweep_due):
                with self._sessions() as session:
                    alerts.sweep(session, clock=self._clock)
            if self._read(anything_due):
                drain(self._sessions, self._config, clock=self._clock,
                      writers=self._writers)
        except Exception:  # the worker must outlive a database hiccup
            logger.exception("outbox worker pass failed; retrying later")
