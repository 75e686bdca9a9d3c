"""The till service: a tap in, a verdict out, the meal charged once.

Every tap is recorded with its verdict under the till's tap id, so a till that retries
gets the first verdict, whatever happened in between (see `cardpay.tap_decision` for the
order of checks). A verdict is returned only once the tap is durably committed.

Work that needs no lock comes first, in the caller's thread: the clock checks, the
NTAG 424 DNA SUN decryption and CMAC, the school's rules (cached for seconds). Then the
tap is decided in one write transaction, which reads everything money depends on:

- on SQLite, by the group committer's one writer thread, each tap in its own savepoint
  and many taps to one commit (one fsync), since SQLite has one writer at a time anyway;
- on PostgreSQL, in a transaction of its own in the caller's thread, holding the pupil's
  account row (and meal revenue's) so that two servers deciding for the same pupil decide
  one after the other.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

import anyio.to_thread
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from cardpay import cards
from cardpay.canteen_cache import Canteen, CanteenCache
from cardpay.errors import CardPayError, TapConflictError, TapRejectedError
from cardpay.group_commit import GroupCommitter, Work
from cardpay.models import Tap
from cardpay.rules import Reason
from cardpay.sun import Keyring, SunMessage
from cardpay.tap_decision import Identity, TapInput, TapRequest, decide_tap
from cardpay.verdicts import Verdict, verdict_of
from school.clock import Clock, utcnow
from school.models import School

__all__ = ["TapRequest", "Till", "TillDevice"]

logger = logging.getLogger(__name__)

MAX_CLOCK_SKEW = timedelta(minutes=2)
MAX_OFFLINE_AGE = timedelta(days=14)


class TillDevice(Protocol):
    """The till a tap comes from: a `Device`, or what the till API read of it."""

    @property
    def id(self) -> int | None: ...
    @property
    def school_id(self) -> int: ...
    @property
    def name(self) -> str: ...


class Till:
    """Decides taps for one deployment; keeps nothing but a few seconds of rules.

    On SQLite it owns a writer thread, started with the first tap; `close` stops it."""

    def __init__(self, *, engine: Engine, keyring: Keyring, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._keyring = keyring
        self._clock = clock
        self._canteens = CanteenCache(engine, clock=clock)
        self._writer: GroupCommitter | None = None
        if engine.dialect.name == "sqlite":
            self._writer = GroupCommitter(engine, name="till-writer")
            weakref.finalize(self, self._writer.stop)

    @property
    def writer(self) -> GroupCommitter | None:
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def warm_up(self) -> int:
        """Start the writer and read every school's canteen, so that the first taps after
        a start wait for neither; the number of schools read."""
        if self._writer is not None:
            self._writer.start()
        with Session(self._engine) as session:
            school_ids = session.exec(select(School.id)).all()
        for school_id in school_ids:
            assert school_id is not None
            self._canteens.get(school_id)
        return len(school_ids)

    def tap(self, device: TillDevice, request: TapRequest) -> Verdict:
        """The verdict for `request`, once the tap is durably recorded."""
        now = self._clock()
        _check_time(request, now)
        tap = self._input(device, request, now, self._canteens.get(device.school_id))
        try:
            return self._write(partial(decide_tap, tap=tap))
        except IntegrityError:
            _raced(request)
        return self._recorded(device, request)

    async def tap_async(self, device: TillDevice, request: TapRequest) -> Verdict:
        """`tap` for an event loop. On SQLite the loop only checks the card and queues the
        tap for the writer thread (no worker thread is held while it waits); on
        PostgreSQL the tap's transaction runs in a worker thread."""
        if self._writer is None:
            return await anyio.to_thread.run_sync(self.tap, device, request)
        now = self._clock()
        _check_time(request, now)
        canteen = self._canteens.cached(device.school_id)
        if canteen is None:
            canteen = await anyio.to_thread.run_sync(self._canteens.get, device.school_id)
        tap = self._input(device, request, now, canteen)
        try:
            return await asyncio.wrap_future(self._writer.enqueue(partial(decide_tap, tap=tap)))
        except IntegrityError:
            _raced(request)
        return await anyio.to_thread.run_sync(self._recorded, device, request)

    def _input(self, device: TillDevice, request: TapRequest, now: datetime,
               canteen: Canteen) -> TapInput:
        assert device.id is not None
        return TapInput(
            device_id=device.id,
            device_name=device.name,
            school_id=device.school_id,
            request=request,
            received_at=now,
            identity=self._identify(request),
            canteen=canteen,
        )

    def _recorded(self, device: TillDevice, request: TapRequest) -> Verdict:
        with Session(self._engine) as session:
            existing = session.exec(select(Tap).where(Tap.tap_id == request.tap_id)).first()
            if existing is None:
                raise TapRejectedError("the tap could not be recorded; send it again")
            if existing.device_id != device.id:
                raise TapConflictError("this tap id was already sent by another till")
            return verdict_of(session, existing)

    def _write(self, work: Work[Verdict]) -> Verdict:
        if self._writer is not None:
            return self._writer.submit(work)
        with self._engine.connect() as conn, conn.begin():
            return work(conn)

    def _identify(self, request: TapRequest) -> Identity:
        """What the card proves by itself: no database, no lock."""
        claimed = _uid_or_blank(request.uid)
        if not request.sun_url:
            if not claimed:
                return Identity(claimed, None, refusal=Reason.UNKNOWN_CARD)
            return Identity(claimed, claimed)
        try:
            verified = self._keyring.verify(SunMessage.from_url(request.sun_url))
        except CardPayError as exc:  # malformed or forged
            logger.warning("tap %s: SUN message refused: %s", request.tap_id, exc)
            return Identity(claimed, None, sun=True, refusal=Reason.CARD_NOT_GENUINE)
        proved = verified.uid.hex().upper()
        if claimed and claimed != proved and not _random_id(claimed):
            # A genuine message of another card sent with this card's UID: both came
            # from the same reader at the same moment, or the message was copied.
            logger.warning("tap %s: the UID read is not the UID the card signed",
                           request.tap_id)
            return Identity(claimed, None, sun=True, refusal=Reason.CARD_NOT_GENUINE,
                            alert="the UID read does not match the card's signed UID "
                                  "(a copied message?)")
        return Identity(claimed, proved, verified.counter, sun=True,
                        key_version=verified.key_version)


def _raced(request: TapRequest) -> None:
    # The same tap id from a concurrent retry committed first: answer as it was.
    logger.info("tap %s raced with its own retry; answering the first", request.tap_id)


def _check_time(request: TapRequest, now: datetime) -> None:
    if request.read_at.tzinfo is None:
        raise TapRejectedError("read_at must carry its time zone")
    if request.read_at > now + MAX_CLOCK_SKEW:
        raise TapRejectedError("read_at is in the future: check the till's clock")
    if request.read_at < now - MAX_OFFLINE_AGE:
        raise TapRejectedError("read_at is too old to be a tap still to be charged")
    if not request.uid and not request.sun_url:
        raise TapRejectedError("the tap carries no card data")


def _random_id(uid: str) -> bool:
    """A random ID (ISO/IEC 14443-3: four bytes, the first 08h), which a card configured
    for privacy shows the reader instead of its UID; only its SUN message names it."""
    return len(uid) == 8 and uid.startswith("08")


def _uid_or_blank(uid: str) -> str:
    try:
        return cards.normalise_uid(uid)
    except CardPayError:
        return ""
