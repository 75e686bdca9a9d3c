"""The shared records: schools, classrooms, pupils, guardians, staff, devices, audit."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

from school.clock import UTCDateTime, utcnow


def _utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default_factory=utcnow if not nullable else None,
        sa_column=Column(UTCDateTime(), nullable=nullable, index=index),
    )


class Role(enum.StrEnum):
    PARENT = "parent"
    TEACHER = "teacher"
    CASHIER = "cashier"
    OFFICE = "office"
    ADMIN = "admin"


STAFF_ROLES = frozenset({Role.TEACHER, Role.CASHIER, Role.OFFICE, Role.ADMIN})


class DeviceKind(enum.StrEnum):
    TILL = "till"
    CAMERA_NODE = "camera_node"


def _enum_column(enum_cls: type[enum.Enum], *, name: str, index: bool = False) -> Any:
    return Field(
        sa_column=Column(
            SAEnum(
                enum_cls,
                name=name,
                native_enum=False,
                validate_strings=True,
                values_callable=lambda e: [m.value for m in e],
                length=32,
            ),
            nullable=False,
            index=index,
        )
    )


class School(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    timezone: str = Field(default="Europe/Paris", max_length=64)
    currency: str = Field(default="EUR", max_length=3)
    locale: str = Field(default="fr", max_length=8)
    created_at: datetime = _utc_column()


class Classroom(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("school_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    name: str = Field(max_length=100)
    level: str = Field(default="", max_length=50)


class Pupil(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("school_id", "external_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    # The identifier in the school's own register, used to match re-imports.
    external_ref: str = Field(max_length=64)
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    birth_date: date | None = None
    classroom_id: int | None = Field(default=None, foreign_key="classroom.id", index=True)
    photo_path: str | None = Field(default=None, max_length=255)
    allergies: str = Field(default="", max_length=500)
    diet_notes: str = Field(default="", max_length=500)
    tariff_band: str = Field(default="", max_length=32)
    left_on: date | None = None
    created_at: datetime = _utc_column()
    # Set when `moulin people purge` replaced what identified the pupil (see moulin.purge).
    anonymised_at: datetime | None = _utc_column(nullable=True)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class User(SQLModel, table=True):
    """Anyone who logs in: a guardian, a member of staff, or both."""

    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    full_name: str = Field(default="", max_length=200)
    password_hash: str | None = Field(default=None, max_length=255)
    locale: str | None = Field(default=None, max_length=8)
    is_active: bool = True
    created_at: datetime = _utc_column()
    # Two-step sign-in (TOTP, RFC 6238; see school.totp): the base32 secret, kept from the
    # start of enrolment and in force once confirmed (totp_enabled_at), and the last time
    # step accepted, so that a code seen over someone's shoulder cannot be used again.
    # Sealed with a key derived from the secret key (school.totp.seal_secret).
    totp_secret: str | None = Field(default=None, max_length=255, repr=False)
    totp_enabled_at: datetime | None = _utc_column(nullable=True)
    totp_last_step: int | None = None
    # Set when `moulin people purge` erased a former guardian's identity.
    anonymised_at: datetime | None = _utc_column(nullable=True)


class RoleGrant(SQLModel, table=True):
    """A staff role held by a user in one school."""

    __tablename__ = "role_grant"
    __table_args__ = (UniqueConstraint("user_id", "school_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    role: Role = _enum_column(Role, name="role")


class ClassroomStaff(SQLModel, table=True):
    """A teacher's own rooms."""

    __tablename__ = "classroom_staff"
    __table_args__ = (UniqueConstraint("classroom_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    classroom_id: int = Field(foreign_key="classroom.id", index=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)


class Guardianship(SQLModel, table=True):
    """A user's link to a pupil, bounded in time so access ends with custody or enrolment."""

    __table_args__ = (Index("ix_guardianship_pupil_user", "pupil_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    pupil_id: int = Field(foreign_key="pupil.id", index=True)
    relation: str = Field(default="", max_length=50)
    starts_on: date
    ends_on: date | None = None

    def active_on(self, day: date) -> bool:
        return self.starts_on <= day and (self.ends_on is None or day < self.ends_on)


class Device(SQLModel, table=True):
    """A till or camera node; it authenticates with a random token kept only as SHA-256."""

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    kind: DeviceKind = _enum_column(DeviceKind, name="device_kind")
    name: str = Field(max_length=100)
    token_sha256: str = Field(max_length=64, unique=True)
    created_at: datetime = _utc_column()
    revoked_at: datetime | None = _utc_column(nullable=True)
    last_seen_at: datetime | None = _utc_column(nullable=True)
    # What a till's reader daemon last reported: taps in its journal not yet sent, and
    # when it last heard from the server (for the staff health page and /metrics).
    reported_queue: int | None = None
    reported_sync_at: datetime | None = _utc_column(nullable=True)


class AuditEvent(SQLModel, table=True):
    """Who did what, when and from where. Rows are only ever added."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc_column(index=True)
    school_id: int | None = Field(default=None, foreign_key="school.id", index=True)
    actor_user_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    actor_device_id: int | None = Field(default=None, foreign_key="device.id")
    action: str = Field(max_length=64, index=True)
    target_type: str = Field(default="", max_length=32)
    target_id: str = Field(default="", max_length=64)
    ip: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class WebSession(SQLModel, table=True):
    """A browser's signed-in session, kept server-side; the cookie holds a random token
    whose SHA-256 is the key here, so a database leak does not hand out sessions."""

    __tablename__ = "web_session"

    id: int | None = Field(default=None, primary_key=True)
    token_sha256: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _utc_column()
    last_seen_at: datetime = _utc_column()
    expires_at: datetime = _utc_column()
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str = Field(default="", max_length=255)
    revoked_at: datetime | None = _utc_column(nullable=True)


class LoginFailure(SQLModel, table=True):
    """Failed sign-ins, counted per e-mail, per address and per known device to throttle
    guessing (parent_portal.throttle)."""

    __tablename__ = "login_failure"
    __table_args__ = (
        Index("ix_login_failure_email_at", "email", "at"),
        Index("ix_login_failure_ip_at", "ip", "at"),
        Index("ix_login_failure_device_at", "device", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254)
    ip: str = Field(default="", max_length=64)
    # A digest of the device cookie's nonce when the browser had a valid one, else ''.
    device: str = Field(default="", max_length=64)
    at: datetime = _utc_column()


class DeviceAuthFailure(SQLModel, table=True):
    """A request to the device API with a missing, unknown or revoked token, counted per
    address to throttle token guessing (see school.device_throttle)."""

    __tablename__ = "device_auth_failure"
    __table_args__ = (Index("ix_device_auth_failure_ip_at", "ip", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    ip: str = Field(default="", max_length=64)
    at: datetime = _utc_column()


class ClosedDay(SQLModel, table=True):
    """A day the school is closed (holidays, strikes, staff training): no canteen, no
    broadcast."""

    __tablename__ = "closed_day"
    __table_args__ = (UniqueConstraint("school_id", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    day: date
    label: str = Field(default="", max_length=100)
