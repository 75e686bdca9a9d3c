"""Security review (issue 12): failed sign-ins remember the known device they came
from, so a device cookie's own failures are counted apart from strangers'.

Revision ID: 0011_security
Revises: 0010
Create Date: 2026-12-08 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011_security"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_failure", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device", sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=False, server_default=""))
        batch_op.create_index("ix_login_failure_device_at", ["device", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("login_failure", schema=None) as batch_op:
        batch_op.drop_index("ix_login_failure_device_at")
        batch_op.drop_column("device")
