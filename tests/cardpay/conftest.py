"""Fixtures for cardpay: a migrated database of either kind, and a school with accounts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from cardpay.accounts import pupil_account, school_account
from cardpay.models import Account, AccountKind
from school.db import make_engine
from school.migrate import upgrade
from tests import factories


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The migrated SQLite copy, then a freshly migrated PostgreSQL database."""
    if request.param == "sqlite":
        yield request.getfixturevalue("engine")
        return
    engine = make_engine(request.getfixturevalue("pg_url"))
    upgrade(engine)
    yield engine
    engine.dispose()


@dataclass
class Books:
    """A school with two pupils' lunch accounts (floor 0 and -500) and its own accounts."""

    school_id: int
    lunch: list[Account]
    revenue: Account
    cash: Account
    clearing: Account


def open_books(session: Session, slug: str = "ecole") -> Books:
    school = factories.school(session, slug=slug)
    room = factories.classroom(session, school, "CP")
    pupils = [factories.pupil(session, room, "Léa", "Martin"),
              factories.pupil(session, room, "Hugo", "Bernard")]
    lunch = [pupil_account(session=session, pupil=pupils[0], floor_cents=0),
             pupil_account(session=session, pupil=pupils[1], floor_cents=-500)]
    assert school.id is not None
    books = Books(
        school.id, lunch,
        school_account(session=session, school_id=school.id, kind=AccountKind.MEAL_REVENUE),
        school_account(session=session, school_id=school.id, kind=AccountKind.CASH_DRAWER),
        school_account(session=session, school_id=school.id,
                       kind=AccountKind.ONLINE_CLEARING),
    )
    session.commit()
    return books


@pytest.fixture
def books(session: Session) -> Books:
    return open_books(session)
