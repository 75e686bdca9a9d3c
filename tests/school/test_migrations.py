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


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_0013_moves_system_balances_to_their_postings_and_back(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A database of 0012, where meal revenue's and the cash drawer's rows held their
    balances: after 0013 those rows hold 0, the balances are the sums of their postings
    and db check passes; downgrading puts the sums back on the rows."""
    from alembic import command
    from sqlalchemy import text
    from sqlmodel import Session

    from cardpay.accounts import pupil_account, school_account
    from cardpay.ledger import balances, check_integrity, post
    from cardpay.models import AccountKind, TransactionKind
    from school.migrate import alembic_config
    from tests import factories

    url = f"sqlite:///{tmp_path / 'm.db'}" if db == "sqlite" \
        else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    upgrade(engine, "0012")
    with Session(engine) as session:
        school = factories.school(session)
        pupil = factories.pupil(session, factories.classroom(session, school, "CP"), "L", "M")
        lunch = pupil_account(session=session, pupil=pupil)
        cash, revenue = (school_account(session=session, school_id=school.id or 0, kind=kind)
                         for kind in (AccountKind.CASH_DRAWER, AccountKind.MEAL_REVENUE))
        post(session=session, school_id=school.id or 0, kind=TransactionKind.TOPUP,
             client_id="t", legs=[(lunch, 1000), (cash, -1000)])
        post(session=session, school_id=school.id or 0, kind=TransactionKind.MEAL,
             client_id="m", legs=[(lunch, -350), (revenue, 350)])
        ids = [a.id for a in (lunch, cash, revenue) if a.id is not None]
    rows = "SELECT balance_cents FROM account WHERE id IN ({}, {}, {}) ORDER BY id"
    with engine.begin() as conn:  # as 0012's code kept them
        conn.execute(text("UPDATE account SET balance_cents = -1000 WHERE id = :id"),
                     {"id": ids[1]})
        conn.execute(text("UPDATE account SET balance_cents = 350 WHERE id = :id"),
                     {"id": ids[2]})
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text(rows.format(*ids))).scalars().all() == [650, 0, 0]
    with Session(engine) as session:
        assert balances(session, ids) == dict(zip(ids, [650, -1000, 350], strict=True))
        assert check_integrity(session) == []
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0012")
    with engine.connect() as conn:
        assert conn.execute(text(rows.format(*ids))).scalars().all() == [650, -1000, 350]
    engine.dispose()


def test_0014_seals_the_totp_secrets_already_stored(tmp_path: Path) -> None:
    import pyotp
    from sqlalchemy import text

    from school import totp
    from school.migrate import alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine, "0013")
    secret = pyotp.random_base32()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO app_user (email, full_name, is_active, created_at, "
                          "totp_secret) VALUES ('a@example.org', 'A', 1, "
                          "'2026-11-24 10:00:00.000000', :s)"), {"s": secret})
    upgrade(engine, secret_key="k" * 40)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT totp_secret FROM app_user")).scalar_one()
    assert secret not in stored
    assert totp.open_secret(stored, "k" * 40) == secret
    with pytest.raises(totp.SecretUnreadable):
        totp.open_secret(stored, "another key" * 4)
    # And back: the downgrade opens them again.
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes.update(connection=conn, secret_key="k" * 40)
        command.downgrade(config, "0013")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT totp_secret FROM app_user")).scalar_one() == secret
    engine.dispose()
