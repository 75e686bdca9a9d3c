"""Migrations build the schema the models describe, from empty, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import cardpay.account_models  # registers the tables
import cardpay.models  # noqa: F401 - registers the tables
import school.auth_models  # registers the tables
import school.models  # noqa: F401 - registers the tables
import webcam.models  # noqa: F401 - registers the tables
from school.db import make_engine
from school.migrate import current_revision, head_revision, include_object, upgrade


def _assert_migrated(url: str) -> None:
    engine = make_engine(url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"school", "pupil", "app_user", "guardianship", "device", "audit_event",
              "account", "ledger_transaction", "posting", "card", "lunch_settings",
              "receipt", "receipt_counter", "topup_intent", "low_balance_alert",
              "outbox_email", "school_alert_settings", "camera", "broadcast_slot",
              "camera_consent", "camera_view", "webcam_settings", "closed_day",
              "password_reset", "pending_login", "recovery_code", "rate_event"} <= tables
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"include_object": include_object}),
            SQLModel.metadata,
        )
    assert diff == [], f"models and migrations disagree: {diff}"
    upgrade(engine)  # a second run is a no-op
    engine.dispose()


def test_sqlite_from_empty_to_head(tmp_path: Path) -> None:
    _assert_migrated(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_postgresql_from_empty_to_head(pg_url: str) -> None:
    _assert_migrated(pg_url)
