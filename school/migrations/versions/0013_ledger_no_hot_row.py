"""No hot row: a system account's balance is the sum of its postings, not kept on its row.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 04:00:00

Every tap of a school credited meal revenue, so every tap updated that one row and, on
PostgreSQL, waited for the tap before it to commit. From here only a pupil's account
keeps its balance on its row (it has a floor to enforce); any other account's balance is
the sum of its postings (`cardpay.ledger.balances`), read through a new index on
(account_id, amount_cents). The database refuses a kept balance or a floor on a system
account: a CHECK constraint on PostgreSQL (as in `cardpay.models.Account`), triggers on
SQLite, which cannot add a constraint to a table without copying it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEPT = "kind = 'pupil_lunch' OR (balance_cents = 0 AND floor_cents IS NULL)"
NEW_KEPT = ("NEW.kind = 'pupil_lunch' "
            "OR (NEW.balance_cents = 0 AND NEW.floor_cents IS NULL)")
REFUSAL = "a system account keeps no balance or floor on its row: its postings are its balance"


def upgrade() -> None:
    op.execute("UPDATE account SET balance_cents = 0, floor_cents = NULL "
               "WHERE kind <> 'pupil_lunch'")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE account ADD CONSTRAINT ck_account_balance_kept CHECK ({KEPT})")
    else:
        for event in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER account_balance_kept_{event.lower()} BEFORE {event} ON account "
                f"WHEN NOT ({NEW_KEPT}) BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            )
    op.create_index("ix_posting_account_amount", "posting", ["account_id", "amount_cents"])
    op.drop_index("ix_posting_account_id", table_name="posting")


def downgrade() -> None:
    op.create_index("ix_posting_account_id", "posting", ["account_id"])
    op.drop_index("ix_posting_account_amount", table_name="posting")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE account DROP CONSTRAINT ck_account_balance_kept")
    else:
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER account_balance_kept_{event}")
    op.execute("UPDATE account SET balance_cents = (SELECT COALESCE(SUM(amount_cents), 0) "
               "FROM posting WHERE posting.account_id = account.id) "
               "WHERE kind <> 'pupil_lunch'")
