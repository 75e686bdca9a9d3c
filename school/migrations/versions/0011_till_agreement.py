"""What the till did and what the server did, kept apart: the SUN read counter each tap
used up, with the key version that signed it (one tap per counter and keys, whatever
order taps arrive in), the till's own verdict for a
tap it decided alone, and the taps on which the two differed with what was done.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import school.clock

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = ("charge_reversed", "charged_late", "not_charged", "nothing_to_do")


def upgrade() -> None:
    with op.batch_alter_table("tap", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sun_counter", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("sun_key_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("till_accepted", sa.Boolean(), nullable=True))
        batch_op.create_index(
            "ux_tap_card_sun_counter", ["card_id", "sun_key_version", "sun_counter"], unique=True,
            sqlite_where=sa.text("sun_counter IS NOT NULL"),
            postgresql_where=sa.text("sun_counter IS NOT NULL"),
        )
    op.create_table(
        "till_disagreement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("tap_row_id", sa.Integer(), nullable=False),
        sa.Column("tap_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("pupil_id", sa.Integer(), nullable=True),
        sa.Column("till_accepted", sa.Boolean(), nullable=False),
        sa.Column("server_accepted", sa.Boolean(), nullable=False),
        sa.Column("server_reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("kind", sa.Enum(*_KINDS, name="disagreement", native_enum=False, length=32),
                  nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("read_at", school.clock.UTCDateTime(timezone=True), nullable=False),
        sa.Column("settled_at", school.clock.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["device.id"]),
        sa.ForeignKeyConstraint(["pupil_id"], ["pupil.id"]),
        sa.ForeignKeyConstraint(["school_id"], ["school.id"]),
        sa.ForeignKeyConstraint(["tap_row_id"], ["tap.id"]),
        sa.ForeignKeyConstraint(["transaction_id"], ["ledger_transaction.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tap_row_id"),
    )
    with op.batch_alter_table("till_disagreement", schema=None) as batch_op:
        batch_op.create_index("ix_till_disagreement_school_id", ["school_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("till_disagreement", schema=None) as batch_op:
        batch_op.drop_index("ix_till_disagreement_school_id")
    op.drop_table("till_disagreement")
    with op.batch_alter_table("tap", schema=None) as batch_op:
        batch_op.drop_index("ux_tap_card_sun_counter")
        batch_op.drop_column("till_accepted")
        batch_op.drop_column("sun_key_version")
        batch_op.drop_column("sun_counter")
