"""Canteen settings, and every tap with its verdict (closed days come with 0003).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 19:48:57.166460
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import school.clock

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "canteen_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("prices_by_band", sa.JSON(), nullable=False),
        sa.Column("default_price_cents", sa.Integer(), nullable=False),
        sa.Column("overdraft_floor_cents", sa.Integer(), nullable=False),
        sa.Column("open_weekdays", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("service_start", sa.Time(), nullable=False),
        sa.Column("service_end", sa.Time(), nullable=False),
        sa.Column("one_meal_per_day", sa.Boolean(), nullable=False),
        sa.Column("offline_allowance_cents", sa.Integer(), nullable=False),
        sa.Column("retap_window_seconds", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["school.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("school_id"),
    )
    op.create_table(
        "tap",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tap_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("card_uid", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=True),
        sa.Column("pupil_id", sa.Integer(), nullable=True),
        sa.Column("read_at", school.clock.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", school.clock.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_offline", sa.Boolean(), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("balance_after_cents", sa.BigInteger(), nullable=True),
        sa.Column("repeat_of_id", sa.Integer(), nullable=True),
        sa.Column("alert", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["card.id"],
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device.id"],
        ),
        sa.ForeignKeyConstraint(
            ["pupil_id"],
            ["pupil.id"],
        ),
        sa.ForeignKeyConstraint(
            ["repeat_of_id"],
            ["tap.id"],
        ),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["school.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tap_id"),
    )
    with op.batch_alter_table("tap", schema=None) as batch_op:
        batch_op.create_index("ix_tap_card_read", ["card_uid", "read_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tap_device_id"), ["device_id"], unique=False)
        batch_op.create_index("ix_tap_pupil_read", ["pupil_id", "read_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tap_school_id"), ["school_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tap", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tap_school_id"))
        batch_op.drop_index("ix_tap_pupil_read")
        batch_op.drop_index(batch_op.f("ix_tap_device_id"))
        batch_op.drop_index("ix_tap_card_read")

    op.drop_table("tap")
    op.drop_table("canteen_settings")
