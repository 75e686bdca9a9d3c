"""Security review (issue 12): failed sign-ins remember the known device they came
from, so a device cookie's own failures are counted apart from strangers'; roles offered
to an existing account wait in `staff_offer` until its holder accepts them; TOTP secrets
are sealed with a key derived from the secret key (as school.totp.seal_secret does; the
derivation is written out here so that this migration never changes with the code);
outbox rows get a `kind`, so a password-reset e-mail is written when it is sent.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 04:00:00
"""

import base64
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import school.clock

revision: str = "0014"
down_revision: str | None = "0013"
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


    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.alter_column("totp_secret", existing_type=sa.String(length=64),
                              type_=sqlmodel.sql.sqltypes.AutoString(length=255),
                              existing_nullable=True)
    _seal_totp_secrets()
    with op.batch_alter_table("outbox_email", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32),
                                      nullable=False, server_default="mail"))


def _fernet() -> Fernet:
    secret_key = op.get_context().config.attributes.get("secret_key")
    if secret_key is None:
        from school.settings import get_settings

        secret_key = get_settings().effective_secret_key()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"moulin/totp-secret/v1").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _users() -> sa.TableClause:
    return sa.table("app_user", sa.column("id", sa.Integer()),
                    sa.column("totp_secret", sa.String()))


def _seal_totp_secrets() -> None:
    bind, users = op.get_bind(), _users()
    rows = bind.execute(sa.select(users.c.id, users.c.totp_secret).where(
        users.c.totp_secret.is_not(None), ~users.c.totp_secret.startswith("v1:"))).all()
    if not rows:
        return
    fernet = _fernet()
    for user_id, secret in rows:
        sealed = "v1:" + fernet.encrypt(secret.encode()).decode("ascii")
        bind.execute(users.update().where(users.c.id == user_id).values(totp_secret=sealed))


def _open_totp_secrets() -> None:
    bind, users = op.get_bind(), _users()
    rows = bind.execute(sa.select(users.c.id, users.c.totp_secret).where(
        users.c.totp_secret.startswith("v1:"))).all()
    if not rows:
        return
    fernet = _fernet()
    for user_id, sealed in rows:
        secret = fernet.decrypt(sealed[3:].encode()).decode()
        bind.execute(users.update().where(users.c.id == user_id).values(totp_secret=secret))


def downgrade() -> None:
    with op.batch_alter_table("outbox_email", schema=None) as batch_op:
        batch_op.drop_column("kind")
    _open_totp_secrets()
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.alter_column("totp_secret", existing_type=sa.String(length=255),
                              type_=sqlmodel.sql.sqltypes.AutoString(length=64),
                              existing_nullable=True)
    with op.batch_alter_table("staff_offer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_offer_user_id"))
        batch_op.drop_index(batch_op.f("ix_staff_offer_school_id"))
    op.drop_table("staff_offer")
    with op.batch_alter_table("login_failure", schema=None) as batch_op:
        batch_op.drop_index("ix_login_failure_device_at")
        batch_op.drop_column("device")
