"""Taps remember whether the card proved itself with an NTAG 424 DNA SUN message, so an
unknown secure card tapped at the office can be enrolled as secure.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tap", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sun_verified", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("tap", schema=None) as batch_op:
        batch_op.drop_column("sun_verified")
