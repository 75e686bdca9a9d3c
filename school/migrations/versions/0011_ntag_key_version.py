"""NTAG 424 DNA key versions: the key version a card was personalised with (which keys
its SUN messages are checked with); None for cards Moulin did not personalise.

Revision ID: 0011_ntag
Revises: 0010
Create Date: 2026-12-08 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_ntag"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.drop_column("key_version")
