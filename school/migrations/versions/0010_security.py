"""Failed device-token requests, counted per address so that token guessing on the till
API is throttled like failed sign-ins.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import school.clock

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_auth_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", school.clock.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("device_auth_failure", schema=None) as batch_op:
        batch_op.create_index("ix_device_auth_failure_ip_at", ["ip", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("device_auth_failure", schema=None) as batch_op:
        batch_op.drop_index("ix_device_auth_failure_ip_at")
    op.drop_table("device_auth_failure")
