"""Around the lunch accounts: parents' settings, office receipts, online top-up intents,
low-balance alerts and the e-mail outbox.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 19:53:31

The tables come from `cardpay.account_models`. Two rules are the database's own:

1. Receipt numbers are unique per school (`uq_receipt_school_number`); `receipt_counter`
   holds the last one issued and is incremented in the same transaction as the top-up, so
   numbers have no gaps. A receipt names its top-up's ledger client id through a foreign
   key checked at commit (DEFERRABLE INITIALLY DEFERRED on both databases), because the
   receipt is written before the ledger transaction it belongs to.
2. At most one open low-balance alert per pupil (`ux_low_balance_alert_open`, partial).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import school.clock

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = school.clock.UTCDateTime(timezone=True)
Text = sqlmodel.sql.sqltypes.AutoString


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=32)


def upgrade() -> None:
    op.create_table(
        "lunch_settings",
        sa.Column("pupil_id", sa.Integer(), nullable=False),
        sa.Column("daily_limit_cents", sa.BigInteger(), nullable=True),
        sa.Column("low_balance_alert_cents", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("updated_by_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["pupil_id"], ["pupil.id"]),
        sa.ForeignKeyConstraint(["updated_by_user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("pupil_id"),
    )
    op.create_table(
        "school_alert_settings",
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("low_balance_alert_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["school_id"], ["school.id"]),
        sa.PrimaryKeyConstraint("school_id"),
    )
    _create_receipts()
    _create_intents()
    _create_alerts()


def _create_receipts() -> None:
    op.create_table(
        "receipt_counter",
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["school_id"], ["school.id"]),
        sa.PrimaryKeyConstraint("school_id"),
    )
    op.create_table(
        "receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("pupil_id", sa.Integer(), nullable=False),
        sa.Column("tender", _enum("tender", "cash", "cheque", "transfer"), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("reference", Text(length=100), nullable=False),
        sa.Column("issued_at", UTC, nullable=False),
        sa.Column("issued_by_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["ledger_transaction.client_id"],
                                initially="DEFERRED", deferrable=True),
        sa.ForeignKeyConstraint(["issued_by_user_id"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["pupil_id"], ["pupil.id"]),
        sa.ForeignKeyConstraint(["school_id"], ["school.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id"),
        sa.UniqueConstraint("school_id", "number", name="uq_receipt_school_number"),
    )
    op.create_index("ix_receipt_pupil_id", "receipt", ["pupil_id"])


def _create_intents() -> None:
    op.create_table(
        "topup_intent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("intent_id", Text(length=64), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("pupil_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("provider", Text(length=16), nullable=False),
        sa.Column("provider_ref", Text(length=255), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", Text(length=3), nullable=False),
        sa.Column("status", _enum("intent_status", "pending", "paid", "cancelled"),
                  nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("paid_at", UTC, nullable=True),
        sa.Column("client_id", Text(length=128), nullable=True),
        sa.ForeignKeyConstraint(["pupil_id"], ["pupil.id"]),
        sa.ForeignKeyConstraint(["school_id"], ["school.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("intent_id"),
    )
    op.create_index("ix_topup_intent_pupil_id", "topup_intent", ["pupil_id"])
    op.create_index("ix_topup_intent_school_id", "topup_intent", ["school_id"])


def _create_alerts() -> None:
    op.create_table(
        "low_balance_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("pupil_id", sa.Integer(), nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.Column("threshold_cents", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("rearmed_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(["pupil_id"], ["pupil.id"]),
        sa.ForeignKeyConstraint(["school_id"], ["school.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_low_balance_alert_pupil_id", "low_balance_alert", ["pupil_id"])
    op.create_index("ux_low_balance_alert_open", "low_balance_alert", ["pupil_id"],
                    unique=True, sqlite_where=sa.text("rearmed_at IS NULL"),
                    postgresql_where=sa.text("rearmed_at IS NULL"))
    op.create_table(
        "outbox_email",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=True),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("to_address", Text(length=254), nullable=False),
        sa.Column("subject", Text(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("next_attempt_at", UTC, nullable=False),
        sa.Column("claimed_until", UTC, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", UTC, nullable=True),
        sa.Column("abandoned_at", UTC, nullable=True),
        sa.Column("last_error", Text(length=500), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["low_balance_alert.id"]),
        sa.ForeignKeyConstraint(["school_id"], ["school.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_email_due", "outbox_email", ["sent_at", "next_attempt_at"])


def downgrade() -> None:
    for table in ("outbox_email", "low_balance_alert", "topup_intent", "receipt",
                  "receipt_counter", "school_alert_settings", "lunch_settings"):
        op.drop_table(table)
