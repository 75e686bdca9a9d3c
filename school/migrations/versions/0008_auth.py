"""Sign-in hardening: TOTP second factor on users, password-reset links, sign-ins waiting
for their second factor, recovery codes, and request counters for throttling.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import school.clock

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, school.clock.UTCDateTime(timezone=True), nullable=nullable)


def _text(name: str, length: int, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(_text("totp_secret", 64, nullable=True))
        batch_op.add_column(_utc("totp_enabled_at", nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))

    op.create_table(
        "password_reset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _text("token_sha256", 64),
        _utc("created_at"),
        _utc("expires_at"),
        _utc("used_at", nullable=True),
        _utc("voided_at", nullable=True),
        _text("ip", 64, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index(op.f("ix_password_reset_user_id"), "password_reset", ["user_id"])

    op.create_table(
        "pending_login",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("token_sha256", 64),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _utc("created_at"),
        _utc("expires_at"),
        _text("next_url", 500),
        _utc("ended_at", nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index(op.f("ix_pending_login_user_id"), "pending_login", ["user_id"])

    op.create_table(
        "recovery_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _text("code_sha256", 64),
        _utc("created_at"),
        _utc("used_at", nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_recovery_code_user_id"), "recovery_code", ["user_id"])

    op.create_table(
        "rate_event",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("kind", 32),
        _text("key", 254),
        _text("ip", 64),
        _utc("at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rate_event_kind_key_at", "rate_event", ["kind", "key", "at"])
    op.create_index("ix_rate_event_kind_ip_at", "rate_event", ["kind", "ip", "at"])


def downgrade() -> None:
    op.drop_index("ix_rate_event_kind_ip_at", table_name="rate_event")
    op.drop_index("ix_rate_event_kind_key_at", table_name="rate_event")
    op.drop_table("rate_event")
    op.drop_index(op.f("ix_recovery_code_user_id"), table_name="recovery_code")
    op.drop_table("recovery_code")
    op.drop_index(op.f("ix_pending_login_user_id"), table_name="pending_login")
    op.drop_table("pending_login")
    op.drop_index(op.f("ix_password_reset_user_id"), table_name="password_reset")
    op.drop_table("password_reset")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enabled_at")
        batch_op.drop_column("totp_secret")
