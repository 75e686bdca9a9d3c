"""Fixtures shared by every test: settings, databases (SQLite and a throwaway PostgreSQL),
a settable clock, and a small school."""

from __future__ import annotations

import gc
import logging
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from school import logs
from school.db import make_engine
from school.migrate import upgrade
from school.settings import Settings
from tests import factories
from tests.hardware.pcscd import Pcscd, PcscdMissing, own_run_dir
from tests.pg import Cluster
from tests.smtp import Inbox, smtp_server

# `pytest --hypothesis-profile=long`: a night's search for the property and model tests
# (tests/cardpay/test_till_model.py reads the loaded profile's budget).
hypothesis_settings.register_profile("long", max_examples=300, stateful_step_count=60,
                                     deadline=None)


def pytest_configure(config: pytest.Config) -> None:
    """Each process that runs tests (every xdist worker, or the one process without
    xdist) gets its own /run/pcscd, so its own pcscd (tests/hardware/pcscd.py). The xdist
    controller runs none and keeps the machine's. Here, before any test starts a thread."""
    controller = bool(getattr(config.option, "numprocesses", None)) and not hasattr(
        config, "workerinput"
    )
    if not controller:
        own_run_dir()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Put the root logger back after each test: a command run in-process (`moulin ...`
    through typer's runner) sends logs to a stream closed when the run ends, and every
    later log line would fail on it."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logs.set_process_fields()


class FakeClock:
    """A clock a test can set and move; starts on a school Tuesday at 11:30 Paris time."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 24, 10, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "var",
        secret_key="t" * 40,
        database_url=f"sqlite:///{tmp_path / 'moulin.db'}",
    )


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once per run; each test gets a copy of the migrated file."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def engine(settings: Settings, _migrated_sqlite: Path) -> Iterator[Engine]:
    db_path = Path(settings.effective_database_url.removeprefix("sqlite:///"))
    shutil.copy(_migrated_sqlite, db_path)
    eng = make_engine(settings.effective_database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s:
        yield s


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_cluster.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield pg_cluster.url(name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pcscd() -> Iterator[Pcscd]:
    """The test run's own pcscd with only the vpcd driver, shared by every test."""
    try:
        daemon = Pcscd()
        daemon.start()
    except PcscdMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    yield daemon
    daemon.cleanup()


@pytest.fixture
def small_school(session: Session) -> factories.SmallSchool:
    return factories.small_school(session)


@pytest.fixture
def smtp() -> Iterator[Inbox]:
    """A local SMTP server that keeps what it receives."""
    with smtp_server() as inbox:
        yield inbox


@pytest.fixture(autouse=True)
def _collect_after_postgres(request: pytest.FixtureRequest) -> Iterator[None]:
    """A PostgreSQL connection left open is reported by psycopg only when it is collected,
    which can be during any later test: collect after each PostgreSQL test, so the error
    lands on the test that leaked (as the 0013 migration test's did)."""
    yield
    if request.node.get_closest_marker("postgres"):
        gc.collect()
