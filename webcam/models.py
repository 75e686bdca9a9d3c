"""The webcam records: cameras, broadcast slots, consents, the viewing log, school settings.

A camera's address may hold a password, so it is kept only sealed (`webcam.sealing`) and
no page or API answer ever shows it. Masks are polygons in fractions of the image, as
`webcam.pipeline.Mask` takes them. The school calendar's closed days are a school record
(`school.models.ClosedDay`): the canteen will want them too.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from school.clock import UTCDateTime, utcnow

DEFAULT_SESSION_MINUTES = 10
DEFAULT_DAILY_QUOTA_MINUTES = 60


def _utc(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default_factory=None if nullable else utcnow,
        sa_column=Column(UTCDateTime(), nullable=nullable, index=index),
    )


class Camera(SQLModel, table=True):
    """One classroom camera; captured by the portal itself unless a camera node owns it."""

    __table_args__ = (UniqueConstraint("school_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    classroom_id: int = Field(foreign_key="classroom.id", index=True)
    name: str = Field(max_length=100)
    # The camera's address (URL, device), encrypted with a key derived from the secret key.
    source_sealed: str = Field(max_length=2000, repr=False)
    # A list of polygons, each a list of [x, y] fractions of the image.
    masks: list[list[list[float]]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    enabled: bool = True
    paused: bool = False
    paused_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    paused_at: datetime | None = _utc(nullable=True)
    # Set when a camera node claims the camera: the device and the base URL at which
    # browsers reach that node (same origin behind the proxy, or its own https origin).
    node_device_id: int | None = Field(default=None, foreign_key="device.id", index=True)
    node_url: str | None = Field(default=None, max_length=255)
    # Written by the owning node so that the portal's 'on air' page can light up.
    live_viewers: int = 0
    live_viewers_at: datetime | None = _utc(nullable=True)
    # Written by the owning node: its capture state ("live", "reconnecting", "offline")
    # and when it last said so, for the staff health page.
    capture_state: str | None = Field(default=None, max_length=16)
    capture_state_at: datetime | None = _utc(nullable=True)
    created_at: datetime = _utc()


class BroadcastSlot(SQLModel, table=True):
    """A weekly slot in the school's local time during which a room may be watched."""

    __tablename__ = "broadcast_slot"
    __table_args__ = (
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="ck_broadcast_slot_weekday"),
        CheckConstraint("starts_at < ends_at", name="ck_broadcast_slot_order"),
    )

    id: int | None = Field(default=None, primary_key=True)
    classroom_id: int = Field(foreign_key="classroom.id", index=True)
    weekday: int  # Monday is 0
    starts_at: time
    ends_at: time


class CameraConsent(SQLModel, table=True):
    """A guardian's or staff member's written consent to a room's broadcast, as recorded."""

    __tablename__ = "camera_consent"
    __table_args__ = (Index("ix_camera_consent_room_user", "classroom_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    classroom_id: int = Field(foreign_key="classroom.id")
    user_id: int = Field(foreign_key="app_user.id", index=True)
    capacity: str = Field(max_length=16)  # "guardian" or "staff", as recorded
    document_ref: str = Field(max_length=200)  # where the signed paper is filed
    given_at: datetime = _utc()
    recorded_by_user_id: int = Field(foreign_key="app_user.id")
    withdrawn_at: datetime | None = _utc(nullable=True)
    withdrawn_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")


class CameraView(SQLModel, table=True):
    """One viewing: who watched which camera, from where, from when to when, and why it
    ended. Rows are added when a stream opens and completed when it closes."""

    __tablename__ = "camera_view"
    __table_args__ = (Index("ix_camera_view_user_started", "user_id", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    camera_id: int = Field(foreign_key="camera.id", index=True)
    user_id: int = Field(foreign_key="app_user.id")
    started_at: datetime = _utc(index=True)
    ended_at: datetime | None = _utc(nullable=True)
    end_reason: str = Field(default="", max_length=32)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str = Field(default="", max_length=255)
    via: str = Field(default="portal", max_length=16)  # "portal" or "node"


class WebcamSettings(SQLModel, table=True):
    """Per-school limits on parents' viewing; a school without a row gets the defaults."""

    __tablename__ = "webcam_settings"

    school_id: int = Field(foreign_key="school.id", primary_key=True)
    session_minutes: int = DEFAULT_SESSION_MINUTES
    daily_quota_minutes: int = DEFAULT_DAILY_QUOTA_MINUTES
