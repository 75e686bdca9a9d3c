"""Tables around the lunch accounts: what parents set, office receipts, online top-up
intents, low-balance alerts and the e-mail outbox that carries them.

The ledger itself (accounts, transactions, postings) is in `cardpay.models`; nothing here
holds money, only what is needed to move it and to tell people about it.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from cardpay.models import _cents, _enum_column, _utc

DEFAULT_LOW_BALANCE_ALERT_CENTS = 500


class LunchSettings(SQLModel, table=True):
    """What a pupil's parents chose: a daily spending limit the till enforces, and the
    balance under which they are e-mailed (None: the school's default)."""

    __tablename__ = "lunch_settings"

    pupil_id: int = Field(foreign_key="pupil.id", primary_key=True)
    daily_limit_cents: int | None = _cents(nullable=True)
    low_balance_alert_cents: int | None = _cents(nullable=True)
    updated_at: datetime = _utc()
    updated_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")


class SchoolAlertSettings(SQLModel, table=True):
    """A school's default low-balance threshold, for pupils whose parents chose none."""

    __tablename__ = "school_alert_settings"

    school_id: int = Field(foreign_key="school.id", primary_key=True)
    low_balance_alert_cents: int = _cents(default=DEFAULT_LOW_BALANCE_ALERT_CENTS)


class Tender(enum.StrEnum):
    CASH = "cash"
    CHEQUE = "cheque"
    TRANSFER = "transfer"


class ReceiptCounter(SQLModel, table=True):
    """The last receipt number a school issued. Incremented in the same database
    transaction as the top-up it numbers, so a number is used exactly when the top-up
    commits: no gaps, no duplicates."""

    __tablename__ = "receipt_counter"

    school_id: int = Field(foreign_key="school.id", primary_key=True)
    last_number: int = _cents(default=0)


class Receipt(SQLModel, table=True):
    """A numbered receipt for money handed in at the office."""

    __table_args__ = (UniqueConstraint("school_id", "number", name="uq_receipt_school_number"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id")
    number: int = Field(sa_column=Column(BigInteger(), nullable=False))
    # The top-up's ledger client id. The receipt is written before the transaction in
    # the same commit, so the foreign key is checked at commit time.
    client_id: str = Field(sa_column=Column(
        String(128),
        ForeignKey("ledger_transaction.client_id", deferrable=True, initially="DEFERRED"),
        unique=True, nullable=False,
    ))
    pupil_id: int = Field(foreign_key="pupil.id", index=True)
    tender: Tender = _enum_column(Tender, name="tender")
    amount_cents: int = _cents()
    # A cheque's number and bank, a transfer's reference.
    reference: str = Field(default="", max_length=100)
    issued_at: datetime = _utc()
    issued_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")


class IntentStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    CANCELLED = "cancelled"


class TopUpIntent(SQLModel, table=True):
    """An online top-up a parent started: a webhook is believed only for an intent of
    ours, for its provider, amount and currency."""

    __tablename__ = "topup_intent"

    id: int | None = Field(default=None, primary_key=True)
    intent_id: str = Field(max_length=64, unique=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    pupil_id: int = Field(foreign_key="pupil.id", index=True)
    user_id: int = Field(foreign_key="app_user.id")
    provider: str = Field(max_length=16)
    provider_ref: str | None = Field(default=None, max_length=255)
    amount_cents: int = _cents()
    currency: str = Field(max_length=3)
    status: IntentStatus = _enum_column(IntentStatus, name="intent_status")
    created_at: datetime = _utc()
    paid_at: datetime | None = _utc(nullable=True)
    # The ledger transaction that credited it.
    client_id: str | None = Field(default=None, max_length=128)


class LowBalanceAlert(SQLModel, table=True):
    """One crossing of a pupil's balance below the alert threshold. Open (not re-armed)
    until the balance is back at or above it; at most one open per pupil, so a pupil's
    parents hear once per crossing, not at every meal."""

    __tablename__ = "low_balance_alert"
    __table_args__ = (
        Index("ux_low_balance_alert_open", "pupil_id", unique=True,
              sqlite_where=text("rearmed_at IS NULL"),
              postgresql_where=text("rearmed_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id")
    pupil_id: int = Field(foreign_key="pupil.id", index=True)
    balance_cents: int = _cents()
    threshold_cents: int = _cents()
    created_at: datetime = _utc()
    rearmed_at: datetime | None = _utc(nullable=True)


class OutboxEmail(SQLModel, table=True):
    """An e-mail to send, committed with whatever caused it and sent later by the outbox
    worker, so a slow mail server never holds up a till and a crash loses nothing."""

    __tablename__ = "outbox_email"
    __table_args__ = (Index("ix_outbox_email_due", "sent_at", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int | None = Field(default=None, foreign_key="school.id")
    alert_id: int | None = Field(default=None, foreign_key="low_balance_alert.id")
    user_id: int | None = Field(default=None, foreign_key="app_user.id")
    # 'mail': sent as stored. Any other kind is written at send time by the worker's
    # writer for it (cardpay.outbox.Writer), so that what only the e-mail may hold (a
    # password-reset link) is never stored here.
    kind: str = Field(default="mail", max_length=32)
    to_address: str = Field(max_length=254)
    subject: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text(), nullable=False))
    created_at: datetime = _utc()
    next_attempt_at: datetime = _utc()
    # Set while a worker sends it, so two workers do not send it twice.
    claimed_until: datetime | None = _utc(nullable=True)
    attempts: int = 0
    sent_at: datetime | None = _utc(nullable=True)
    # Given up: too many failures, or too old to be worth sending.
    abandoned_at: datetime | None = _utc(nullable=True)
    last_error: str = Field(default="", max_length=500)
