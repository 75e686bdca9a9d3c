"""Lunch-account ledger and cards, with the rules the database enforces by itself.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 19:13:13

The tables come from `cardpay.models`. On top of them, whatever writes to the database
(the services, a script, a person at a SQL prompt) meets these rules:

1. Every ledger transaction has postings, and they sum to zero, at commit.
   - PostgreSQL: DEFERRABLE INITIALLY DEFERRED constraint triggers on `posting` and on
     `ledger_transaction` check the sum when the transaction commits (as django-hordak does).
   - SQLite has no deferred triggers, but it has deferred foreign keys, which it checks at
     COMMIT (and at the end of each statement outside BEGIN ... COMMIT). So a transaction
     that does not sum to zero is made to hold a foreign key that cannot be satisfied:
     inserting a `ledger_transaction` row adds a row to `ledger_unbalanced`, whose only
     column references `ledger_no_such_transaction`, a table kept empty by a trigger. After
     each posting insert a trigger re-sums the transaction's postings and deletes that row
     when the sum is zero, or puts it back when it is not. COMMIT with a row still there
     fails with 'FOREIGN KEY constraint failed' and the transaction stays open for the
     writer to roll back. The row cannot be deleted by hand while the sum is not zero, nor
     updated. Because postings are checked as they come, a transaction may pass through
     non-zero sums on its way (three legs), and adding legs to a committed transaction that
     no longer sum to zero is refused too. `school.migrate` hides these two tables from
     autogenerate, since no model describes them.
     The guarantee needs `PRAGMA foreign_keys=ON`, which `school.db.make_engine` sets on
     every connection; a connection that turns it off opts out of every foreign key.
2. Postings and transactions are never updated or deleted (triggers; on PostgreSQL also
   TRUNCATE). A mistake is undone by a reversing transaction.
3. A transaction is reversed at most once: `ledger_transaction.reverses_id` is UNIQUE.
4. A card's UID and pupil never change and cards are never deleted, so a UID is linked to
   one pupil forever; a lost or retired card never becomes active or blocked again (a lost
   one may still be retired); at most one active card per pupil (a partial unique index).

SQLite's batch mode rebuilds a table by copying it, which drops its triggers: a later
migration that batch-alters `posting`, `ledger_transaction`, `ledger_unbalanced` or `card`
must create the triggers below again (tests/cardpay/test_db_rules.py will notice).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import school.clock

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=32)


def upgrade() -> None:
    _create_tables()
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_RULES:
            op.execute(statement)
    else:
        for statement in SQLITE_RULES:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_DROP:
            op.execute(statement)
    else:
        op.execute("DROP TABLE ledger_unbalanced")
        op.execute("DROP TABLE ledger_no_such_transaction")
    op.drop_table("posting")
    op.drop_table("card")
    op.drop_table("account")
    op.drop_table("ledger_transaction")


def _create_tables() -> None:
    op.create_table(
        "ledger_transaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("transaction_kind", "meal", "topup", "refund", "correction",
                                "reversal", "transfer"), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", school.clock.UTCDateTime(timezone=True), nullable=False),
        sa.Column("occurred_at", school.clock.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor_device_id", sa.Integer(), nullable=True),
        sa.Column("memo", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("reverses_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["actor_device_id"], ["device.id"]),
        sa.ForeignKeyConstraint(["actor_user_id"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["reverses_id"], ["ledger_transaction.id"]),
        sa.ForeignKeyConstraint(["school_id"], ["school.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id"),
        sa.UniqueConstraint("reverses_id"),
    )
    op.create_index("ix_ledger_transaction_school_id", "ledger_transaction", ["school_id"])

    op.create_table(
        "account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("account_kind", "pupil_lunch", "cash_drawer", "online_clearing",
                                "meal_revenue", "refunds", "adjustments"), nullable=False),
        sa.Column("pupil_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.Column("floor_cents", sa.BigInteger(), nullable=True),
        sa.Column("created_at", school.clock.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("(kind = 'pupil_lunch') = (pupil_id IS NOT NULL)",
                           name="ck_account_pupil_iff_lunch"),
        sa.CheckConstraint("device_id IS NULL OR kind = 'cash_drawer'",
                           name="ck_account_device_only_drawer"),
        sa.ForeignKeyConstraint(["device_id"], ["device.id"]),
        sa.ForeignKeyConstraint(["pupil_id"], ["pupil.id"]),
        sa.ForeignKeyConstraint(["school_id"], ["school.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_account_school_id", "account", ["school_id"])
    _partial_unique("ux_account_device", "account", ["device_id"], "device_id IS NOT NULL")
    _partial_unique("ux_account_pupil", "account", ["pupil_id"], "pupil_id IS NOT NULL")
    _partial_unique("ux_account_school_kind", "account", ["school_id", "kind"],
                    "pupil_id IS NULL AND device_id IS NULL")

    op.create_table(
        "card",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pupil_id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("card_kind", "uid", "ntag424"), nullable=False),
        sa.Column("uid", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("status", _enum("card_status", "active", "blocked", "lost", "retired"),
                  nullable=False),
        sa.Column("last_sun_counter", sa.Integer(), nullable=True),
        sa.Column("created_at", school.clock.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status_changed_at", school.clock.UTCDateTime(timezone=True),
                  nullable=False),
        sa.ForeignKeyConstraint(["pupil_id"], ["pupil.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uid"),
    )
    op.create_index("ix_card_pupil_id", "card", ["pupil_id"])
    _partial_unique("ux_card_active_pupil", "card", ["pupil_id"], "status = 'active'")

    op.create_table(
        "posting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_cents <> 0", name="ck_posting_nonzero"),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["transaction_id"], ["ledger_transaction.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_posting_account_id", "posting", ["account_id"])
    op.create_index("ix_posting_transaction_id", "posting", ["transaction_id"])


def _partial_unique(name: str, table: str, columns: list[str], where: str) -> None:
    op.create_index(name, table, columns, unique=True, sqlite_where=sa.text(where),
                    postgresql_where=sa.text(where))


SQLITE_RULES = [
    # 1. Zero sum, checked at COMMIT through a deferred foreign key (see the docstring).
    "CREATE TABLE ledger_no_such_transaction (id INTEGER PRIMARY KEY)",
    """CREATE TRIGGER ledger_no_such_transaction_stays_empty
       BEFORE INSERT ON ledger_no_such_transaction
       BEGIN SELECT RAISE(ABORT, 'ledger_no_such_transaction must stay empty'); END""",
    """CREATE TABLE ledger_unbalanced (
         transaction_id INTEGER PRIMARY KEY
           REFERENCES ledger_no_such_transaction (id) DEFERRABLE INITIALLY DEFERRED)""",
    """CREATE TRIGGER ledger_transaction_opens AFTER INSERT ON ledger_transaction
       BEGIN INSERT INTO ledger_unbalanced (transaction_id) VALUES (NEW.id); END""",
    """CREATE TRIGGER posting_rebalances AFTER INSERT ON posting
       BEGIN
         INSERT OR IGNORE INTO ledger_unbalanced (transaction_id)
           SELECT NEW.transaction_id
           WHERE (SELECT SUM(amount_cents) FROM posting
                  WHERE transaction_id = NEW.transaction_id) <> 0;
         DELETE FROM ledger_unbalanced
           WHERE transaction_id = NEW.transaction_id
             AND (SELECT SUM(amount_cents) FROM posting
                  WHERE transaction_id = NEW.transaction_id) = 0;
       END""",
    """CREATE TRIGGER ledger_unbalanced_kept BEFORE DELETE ON ledger_unbalanced
       WHEN COALESCE((SELECT SUM(amount_cents) FROM posting
                      WHERE transaction_id = OLD.transaction_id), 1) <> 0
       BEGIN SELECT RAISE(ABORT, 'ledger transaction does not sum to zero'); END""",
    """CREATE TRIGGER ledger_unbalanced_no_update BEFORE UPDATE ON ledger_unbalanced
       BEGIN SELECT RAISE(ABORT, 'ledger_unbalanced rows are never updated'); END""",
    # 2. Postings and transactions are history.
    """CREATE TRIGGER posting_no_update BEFORE UPDATE ON posting
       BEGIN SELECT RAISE(ABORT, 'postings are never updated: post a reversal'); END""",
    """CREATE TRIGGER posting_no_delete BEFORE DELETE ON posting
       BEGIN SELECT RAISE(ABORT, 'postings are never deleted: post a reversal'); END""",
    """CREATE TRIGGER ledger_transaction_no_update BEFORE UPDATE ON ledger_transaction
       BEGIN SELECT RAISE(ABORT, 'ledger transactions are never updated: post a reversal'); END""",
    """CREATE TRIGGER ledger_transaction_no_delete BEFORE DELETE ON ledger_transaction
       BEGIN SELECT RAISE(ABORT, 'ledger transactions are never deleted: post a reversal'); END""",
    # 4. A card belongs to one pupil forever; lost and retired are final.
    """CREATE TRIGGER card_identity_fixed BEFORE UPDATE OF uid, pupil_id ON card
       WHEN NEW.uid IS NOT OLD.uid OR NEW.pupil_id IS NOT OLD.pupil_id
       BEGIN SELECT RAISE(ABORT, 'a card''s UID and pupil never change'); END""",
    """CREATE TRIGGER card_final_status BEFORE UPDATE OF status ON card
       WHEN OLD.status IN ('lost', 'retired') AND NEW.status IS NOT OLD.status
            AND NOT (OLD.status = 'lost' AND NEW.status = 'retired')
       BEGIN SELECT RAISE(ABORT, 'a lost or retired card is never used again'); END""",
    """CREATE TRIGGER card_no_delete BEFORE DELETE ON card
       BEGIN SELECT RAISE(ABORT, 'cards are never deleted: retire them'); END""",
]

POSTGRESQL_RULES = [
    # 1. Zero sum, checked at COMMIT by deferred constraint triggers.
    """CREATE FUNCTION ledger_assert_zero_sum(txn integer) RETURNS void
       LANGUAGE plpgsql AS $$
       DECLARE total bigint; legs integer;
       BEGIN
         SELECT COALESCE(SUM(amount_cents), 0), COUNT(*) INTO total, legs
           FROM posting WHERE transaction_id = txn;
         IF legs = 0 OR total <> 0 THEN
           RAISE EXCEPTION 'ledger transaction % does not sum to zero (% cents in % postings)',
             txn, total, legs USING ERRCODE = 'check_violation';
         END IF;
       END $$""",
    """CREATE FUNCTION posting_zero_sum() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN PERFORM ledger_assert_zero_sum(NEW.transaction_id); RETURN NULL; END $$""",
    """CREATE FUNCTION ledger_transaction_zero_sum() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN PERFORM ledger_assert_zero_sum(NEW.id); RETURN NULL; END $$""",
    """CREATE CONSTRAINT TRIGGER posting_zero_sum AFTER INSERT ON posting
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION posting_zero_sum()""",
    """CREATE CONSTRAINT TRIGGER ledger_transaction_zero_sum AFTER INSERT ON ledger_transaction
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transaction_zero_sum()""",
    # 2. Postings and transactions are history.
    """CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION '% rows are never changed (% refused): post a reversal',
           TG_TABLE_NAME, TG_OP USING ERRCODE = 'integrity_constraint_violation';
       END $$""",
    """CREATE TRIGGER posting_immutable BEFORE UPDATE OR DELETE ON posting
       FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()""",
    """CREATE TRIGGER posting_no_truncate BEFORE TRUNCATE ON posting
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()""",
    """CREATE TRIGGER ledger_transaction_immutable BEFORE UPDATE OR DELETE ON ledger_transaction
       FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()""",
    """CREATE TRIGGER ledger_transaction_no_truncate BEFORE TRUNCATE ON ledger_transaction
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()""",
    # 4. A card belongs to one pupil forever; lost and retired are final.
    """CREATE FUNCTION card_guard() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'DELETE' THEN
           RAISE EXCEPTION 'cards are never deleted: retire them'
             USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         IF NEW.uid IS DISTINCT FROM OLD.uid OR NEW.pupil_id IS DISTINCT FROM OLD.pupil_id THEN
           RAISE EXCEPTION 'a card''s UID and pupil never change'
             USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         IF OLD.status IN ('lost', 'retired') AND NEW.status IS DISTINCT FROM OLD.status
            AND NOT (OLD.status = 'lost' AND NEW.status = 'retired') THEN
           RAISE EXCEPTION 'a lost or retired card is never used again'
             USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER card_guard BEFORE UPDATE OR DELETE ON card
       FOR EACH ROW EXECUTE FUNCTION card_guard()""",
    """CREATE TRIGGER card_no_truncate BEFORE TRUNCATE ON card
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()""",
]

POSTGRESQL_DROP = [
    "DROP TRIGGER card_no_truncate ON card",
    "DROP TRIGGER card_guard ON card",
    "DROP FUNCTION card_guard()",
    "DROP TRIGGER ledger_transaction_no_truncate ON ledger_transaction",
    "DROP TRIGGER ledger_transaction_immutable ON ledger_transaction",
    "DROP TRIGGER posting_no_truncate ON posting",
    "DROP TRIGGER posting_immutable ON posting",
    "DROP FUNCTION ledger_refuse_change()",
    "DROP TRIGGER ledger_transaction_zero_sum ON ledger_transaction",
    "DROP TRIGGER posting_zero_sum ON posting",
    "DROP FUNCTION ledger_transaction_zero_sum()",
    "DROP FUNCTION posting_zero_sum()",
    "DROP FUNCTION ledger_assert_zero_sum(integer)",
]
