"""Personal data: accounts closed when a pupil leaves, pupils and former guardians
anonymised after the retention period, and a retired card's UID that may be erased.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 10:00:00

Migration 0002 made a card's UID unchangeable, so that a UID is linked to one pupil
forever. Erasure needs one exception: a lost or retired card's UID may be replaced, once,
by a value beginning with '~' (see moulin.purge), which no reader ever produces, so the
card stays out of use and its row keeps the ledger's history readable. Nothing else about
the rule changes: the pupil never changes, and a '~' value never changes again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import school.clock

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("account", "closed_at"), ("pupil", "anonymised_at"), ("app_user", "anonymised_at"))

SQLITE_DROP = "DROP TRIGGER card_identity_fixed"
SQLITE_ERASABLE = """CREATE TRIGGER card_identity_fixed BEFORE UPDATE OF uid, pupil_id ON card
       WHEN NEW.pupil_id IS NOT OLD.pupil_id
         OR (NEW.uid IS NOT OLD.uid
             AND NOT (substr(NEW.uid, 1, 1) = '~' AND substr(OLD.uid, 1, 1) <> '~'
                      AND NEW.status IN ('lost', 'retired')))
       BEGIN SELECT RAISE(ABORT, 'a card''s UID and pupil never change'); END"""
SQLITE_FIXED = """CREATE TRIGGER card_identity_fixed BEFORE UPDATE OF uid, pupil_id ON card
       WHEN NEW.uid IS NOT OLD.uid OR NEW.pupil_id IS NOT OLD.pupil_id
       BEGIN SELECT RAISE(ABORT, 'a card''s UID and pupil never change'); END"""

_PG_GUARD = """CREATE OR REPLACE FUNCTION card_guard() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'DELETE' THEN
           RAISE EXCEPTION 'cards are never deleted: retire them'
             USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         IF NEW.pupil_id IS DISTINCT FROM OLD.pupil_id OR ({uid_changed}) THEN
           RAISE EXCEPTION 'a card''s UID and pupil never change'
             USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         IF OLD.status IN ('lost', 'retired') AND NEW.status IS DISTINCT FROM OLD.status
            AND NOT (OLD.status = 'lost' AND NEW.status = 'retired') THEN
           RAISE EXCEPTION 'a lost or retired card is never used again'
             USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         RETURN NEW;
       END $$"""
PG_ERASABLE = _PG_GUARD.format(uid_changed=(
    "NEW.uid IS DISTINCT FROM OLD.uid AND NOT (left(NEW.uid, 1) = '~' "
    "AND left(OLD.uid, 1) <> '~' AND NEW.status IN ('lost', 'retired'))"))
PG_FIXED = _PG_GUARD.format(uid_changed="NEW.uid IS DISTINCT FROM OLD.uid")


def upgrade() -> None:
    for table, column in COLUMNS:
        # Adding a nullable column is a plain ALTER TABLE on SQLite too: no table rebuild,
        # so the card and ledger triggers stay as they are.
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(column, school.clock.UTCDateTime(timezone=True), nullable=True)
            )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_ERASABLE)
    else:
        op.execute(SQLITE_DROP)
        op.execute(SQLITE_ERASABLE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FIXED)
    else:
        op.execute(SQLITE_DROP)
        op.execute(SQLITE_FIXED)
    for table, column in reversed(COLUMNS):
        # ALTER TABLE ... DROP COLUMN (SQLite 3.35+) rather than a batch rebuild, which
        # would lose the partial unique indexes of `account`.
        op.drop_column(table, column)
