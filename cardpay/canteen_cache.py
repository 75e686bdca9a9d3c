"""A school's canteen rules and the facts every tap needs, read at most every few seconds.

The till reads them outside its write lock and before its transaction, so a tap does not
pay for them. Once an entry is `TTL_S` old, one background thread reads it again while
taps go on with the old one (had every tap that found it stale read it, a busy canteen
would stall every few seconds); past twice that, a tap waits for a fresh one. So a change
to the rules, the calendar or a classroom's name reaches the tills within 2 x `TTL_S`;
what money depends on (balances, limits, cards, meals eaten) is never cached, but read
under the lock with each tap.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from cardpay import canteen
from cardpay.accounts import school_account
from cardpay.booking import AccountIds
from cardpay.models import Account, AccountKind
from cardpay.rules import CanteenRules
from cardpay.verdicts import SchoolFacts
from school.clock import Clock
from school.db import immediate_session
from school.models import Classroom, School

TTL_S = 5.0


@dataclass(frozen=True)
class Canteen:
    """One school's rules and the facts a tap needs, as read at `loaded`."""

    school_id: int
    facts: SchoolFacts
    rules: CanteenRules
    retap: timedelta
    revenue: AccountIds
    rooms: dict[int, str]
    loaded: float


class CanteenCache:
    """Each school's `Canteen`, read again once older than `ttl` seconds."""

    def __init__(self, engine: Engine, *, clock: Clock, ttl: float = TTL_S) -> None:
        self._engine, self._clock, self._ttl = engine, clock, ttl
        self._canteens: dict[int, Canteen] = {}
        self._refreshing: set[int] = set()
        self._lock = threading.Lock()

    def cached(self, school_id: int) -> Canteen | None:
        """The school's canteen if fresh enough, without blocking (see the docstring)."""
        with self._lock:
            cached = self._canteens.get(school_id)
            if cached is None:
                return None
            age = time.monotonic() - cached.loaded
            if age >= self._ttl and school_id not in self._refreshing and age < 2 * self._ttl:
                self._refreshing.add(school_id)
                threading.Thread(target=self._refresh, args=(school_id,), daemon=True,
                                 name="canteen-refresh").start()
        return cached if age < 2 * self._ttl else None

    def get(self, school_id: int) -> Canteen:
        return self.cached(school_id) or self._store(self._load(school_id))

    def _refresh(self, school_id: int) -> None:
        try:
            self._store(self._load(school_id))
        finally:
            with self._lock:
                self._refreshing.discard(school_id)

    def _store(self, canteen: Canteen) -> Canteen:
        with self._lock:
            self._canteens[canteen.school_id] = canteen
        return canteen

    def _load(self, school_id: int) -> Canteen:
        with Session(self._engine) as session:
            school = session.get(School, school_id)
            assert school is not None
            rooms = session.exec(
                select(Classroom.id, Classroom.name).where(Classroom.school_id == school_id)
            ).all()
            fresh = Canteen(
                school_id,
                SchoolFacts.of(school),
                canteen.rules_for(session, school, now=self._clock()),
                canteen.retap_window(session, school_id),
                self._revenue(session, school_id),
                {k: v for k, v in rooms if k is not None},
                time.monotonic(),
            )
        return fresh

    def _revenue(self, session: Session, school_id: int) -> AccountIds:
        found = session.exec(
            select(Account.id).where(
                Account.school_id == school_id,
                Account.kind == AccountKind.MEAL_REVENUE,
                col(Account.pupil_id).is_(None),
                col(Account.device_id).is_(None),
            )
        ).first()
        if found is None:
            # Opened before the school's first meal, under the write lock like any write.
            with immediate_session(self._engine) as writer:
                found = school_account(
                    session=writer, school_id=school_id, kind=AccountKind.MEAL_REVENUE
                ).id
                writer.commit()
        assert found is not None
        return AccountIds(found, school_id, AccountKind.MEAL_REVENUE)
