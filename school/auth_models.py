"""Records behind sign-in beyond the password: reset links, the half-finished sign-ins
that wait for a second factor, recovery codes, and the counters that throttle requests.

Every secret a browser or an e-mail holds is kept here only as its SHA-256, like session
and device tokens (see school.security): a copy of the database hands out nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from school.models import _utc_column


class PasswordReset(SQLModel, table=True):
    """A password-reset link sent by e-mail: good once, until `expires_at`, and only while
    it is the user's latest (a newer link or a password change voids it)."""

    __tablename__ = "password_reset"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    token_sha256: str = Field(max_length=64, unique=True)
    created_at: datetime = _utc_column()
    expires_at: datetime = _utc_column()
    used_at: datetime | None = _utc_column(nullable=True)
    voided_at: datetime | None = _utc_column(nullable=True)
    ip: str | None = Field(default=None, max_length=64)


class PendingLogin(SQLModel, table=True):
    """A sign-in whose password was right and that waits for the second factor. It is no
    session: nothing but the code page accepts its cookie."""

    __tablename__ = "pending_login"

    id: int | None = Field(default=None, primary_key=True)
    token_sha256: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = _utc_column()
    expires_at: datetime = _utc_column()
    next_url: str = Field(default="/", max_length=500)
    ended_at: datetime | None = _utc_column(nullable=True)


class RecoveryCode(SQLModel, table=True):
    """A one-time code that stands in for the authenticator app, kept as SHA-256 (the
    codes are random, 80 bits each, so a fast hash is enough)."""

    __tablename__ = "recovery_code"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    code_sha256: str = Field(max_length=64)
    created_at: datetime = _utc_column()
    used_at: datetime | None = _utc_column(nullable=True)


class RateEvent(SQLModel, table=True):
    """One counted request (for example a password-reset request), per `kind`, for the
    throttles that count requests rather than failures (failed sign-ins have their own
    table, LoginFailure)."""

    __tablename__ = "rate_event"
    __table_args__ = (
        Index("ix_rate_event_kind_key_at", "kind", "key", "at"),
        Index("ix_rate_event_kind_ip_at", "kind", "ip", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    key: str = Field(max_length=254)
    ip: str = Field(default="", max_length=64)
    at: datetime = _utc_column()


class StaffOffer(SQLModel, table=True):
    """Roles in a school offered to an existing account, which its holder accepts while
    signed in (an admin never acts on an account by typing its address: issue 12). The
    link's token is kept as its SHA-256 only."""

    __tablename__ = "staff_offer"

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    roles: str = Field(max_length=100)  # comma-separated role values
    token_sha256: str = Field(max_length=64, unique=True)
    offered_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = _utc_column()
    expires_at: datetime = _utc_column()
    accepted_at: datetime | None = _utc_column(nullable=True)
