"""Classroom webcams: cameras, broadcast slots, consents, the viewing log, per-school
limits; and the school calendar's closed days.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 19:51:47

The tables come from `webcam.models`, except `closed_day`, which is a school record
(`school.models.ClosedDay`): the broadcast schedule is its first user, the canteen will be
another. A camera's address is stored only sealed (`camera.source_sealed`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import school.clock

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "closed_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["school.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("school_id", "day"),
    )
    with op.batch_alter_table("closed_day", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_closed_day_school_id"), ["school_id"], unique=False)

    op.create_table(
        "webcam_settings",
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("session_minutes", sa.Integer(), nullable=False),
        sa.Column("daily_quota_minutes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["school.id"],
        ),
        sa.PrimaryKeyConstraint("school_id"),
    )
    op.create_table(
        "broadcast_slot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("classroom_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.Time(), nullable=False),
        sa.Column("ends_at", sa.Time(), nullable=False),
        sa.CheckConstraint("starts_at < ends_at", name="ck_broadcast_slot_order"),
        sa.CheckConstraint("weekday >= 0 AND weekday <= 6", name="ck_broadcast_slot_weekday"),
        sa.ForeignKeyConstraint(
            ["classroom_id"],
            ["classroom.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("broadcast_slot", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_broadcast_slot_classroom_id"), ["classroom_id"], unique=False
        )

    op.create_table(
        "camera",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("classroom_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("source_sealed", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("masks", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_by_user_id", sa.Integer(), nullable=True),
        sa.Column("paused_at", school.clock.UTCDateTime(timezone=True), nullable=True),
        sa.Column("node_device_id", sa.Integer(), nullable=True),
        sa.Column("node_url", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("live_viewers", sa.Integer(), nullable=False),
        sa.Column("live_viewers_at", school.clock.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", school.clock.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["classroom_id"],
            ["classroom.id"],
        ),
        sa.ForeignKeyConstraint(
            ["node_device_id"],
            ["device.id"],
        ),
        sa.ForeignKeyConstraint(
            ["paused_by_user_id"],
            ["app_user.id"],
        ),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["school.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("school_id", "name"),
    )
    with op.batch_alter_table("camera", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_camera_classroom_id"), ["classroom_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_camera_node_device_id"), ["node_device_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_camera_school_id"), ["school_id"], unique=False)

    op.create_table(
        "camera_consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("classroom_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("capacity", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("document_ref", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("given_at", school.clock.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_user_id", sa.Integer(), nullable=False),
        sa.Column("withdrawn_at", school.clock.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["classroom_id"],
            ["classroom.id"],
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_user_id"],
            ["app_user.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
        ),
        sa.ForeignKeyConstraint(
            ["withdrawn_by_user_id"],
            ["app_user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("camera_consent", schema=None) as batch_op:
        batch_op.create_index(
            "ix_camera_consent_room_user", ["classroom_id", "user_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_camera_consent_user_id"), ["user_id"], unique=False)

    op.create_table(
        "camera_view",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("started_at", school.clock.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", school.clock.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("user_agent", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("via", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["camera.id"],
        ),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["school.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("camera_view", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_camera_view_camera_id"), ["camera_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_camera_view_school_id"), ["school_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_camera_view_started_at"), ["started_at"], unique=False)
        batch_op.create_index(
            "ix_camera_view_user_started", ["user_id", "started_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("camera_view", schema=None) as batch_op:
        batch_op.drop_index("ix_camera_view_user_started")
        batch_op.drop_index(batch_op.f("ix_camera_view_started_at"))
        batch_op.drop_index(batch_op.f("ix_camera_view_school_id"))
        batch_op.drop_index(batch_op.f("ix_camera_view_camera_id"))

    op.drop_table("camera_view")
    with op.batch_alter_table("camera_consent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_camera_consent_user_id"))
        batch_op.drop_index("ix_camera_consent_room_user")

    op.drop_table("camera_consent")
    with op.batch_alter_table("camera", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_camera_school_id"))
        batch_op.drop_index(batch_op.f("ix_camera_node_device_id"))
        batch_op.drop_index(batch_op.f("ix_camera_classroom_id"))

    op.drop_table("camera")
    with op.batch_alter_table("broadcast_slot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcast_slot_classroom_id"))

    op.drop_table("broadcast_slot")
    op.drop_table("webcam_settings")
    with op.batch_alter_table("closed_day", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_closed_day_school_id"))

    op.drop_table("closed_day")
