"""NTAG 424 DNA key versions: the key version a card was personalised with (which keys
its SUN messages are checked with); None for cards Moulin did not personalise.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE on both databases: a batch (copy and move) on SQLite would drop the
# card table's triggers (migrations 0002 and 0009).


def upgrade() -> None:
    op.add_column("card", sa.Column("key_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE card DROP COLUMN key_version")  # SQLite 3.35 and later
    else:
        op.drop_column("card", "key_version")
