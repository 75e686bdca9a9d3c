"""What devices report about themselves, for the staff health page and /metrics: a till's
journal queue and last sync, a camera node's capture state per camera.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import school.clock

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reported_queue", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("reported_sync_at", school.clock.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("camera", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("capture_state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.add_column(
            sa.Column("capture_state_at", school.clock.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("camera", schema=None) as batch_op:
        batch_op.drop_column("capture_state_at")
        batch_op.drop_column("capture_state")
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.drop_column("reported_sync_at")
        batch_op.drop_column("reported_queue")
