"""Fixtures for cardpay: a migrated database of either kind, and a school with accounts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from school.db import make_engine
from school.migrate import upgrade


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
