"""Security review (issue 12): failed sign-ins remember the known device they came
from, so a device cookie's own failures are counted apart from strangers'; roles offered
to an existing account wait in `staff_offer` until its holder accepts them.

Revision ID: 0011_security
Revises: 0010
Create Date: 2026-12-08 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import school.clock

revision: str = "0011_security"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_failure", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device", sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=False, server_default=""))
        batch_op.create_index("ix_login_failure_device_at", ["device", "at"], unique=False)
    op.create_table(
        "staff_offer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("roles", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("token_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("offered_by", sa.Integer(), nullable=True),
        sa.Column("created_at", school.clock.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", school.clock.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", school.clock.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["offered_by"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["school_id"], ["school.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    with op.batch_alter_table("staff_offer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_offer_school_id"), ["school_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_staff_offer_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_offer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_offer_user_id"))
        batch_op.drop_index(batch_op.f("ix_staff_offer_school_id"))
    op.drop_table("staff_offer")
    with op.batch_alter_table("login_failure", schema=None) as batch_op:
        batch_op.drop_index("ix_login_failure_device_at")
        batch_op.drop_column("device")
