"""Ledger and card tables: accounts, transactions, their postings, and pupils' cards.

Amounts are signed integer cents, credit-positive: a posting of +350 to a pupil's lunch
account adds 3.50 to what the school holds for that pupil, and a meal posts -350 there and
+350 to meal revenue. So pupil and revenue balances read positive, and the accounts of
money the school physically holds (cash drawers, online clearing) read negative;
`AccountKind.display_sign` turns those round for people.

Rules the database itself enforces (migration 0002): every transaction's postings sum to
zero, postings and transactions are never updated or deleted, a transaction is reversed
at most once, a card's UID and pupil never change, one active card per pupil.
"""

from __future__ import annotations

import enum
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    false,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

# Re-exported: they lived here first, and the tables below use them.
from cardpay.statuses import CardKind as CardKind
from cardpay.statuses import CardStatus as CardStatus
from school.clock import UTCDateTime, utcnow


class AccountKind(enum.StrEnum):
    PUPIL_LUNCH = "pupil_lunch"
    CASH_DRAWER = "cash_drawer"  # one per till device, and one (device None) for the office
    ONLINE_CLEARING = "online_clearing"
    CHEQUES = "cheques"  # cheques received at the office, not yet paid in at the bank
    BANK = "bank"  # bank transfers received straight into the school's account
    MEAL_REVENUE = "meal_revenue"
    REFUNDS = "refunds"
    ADJUSTMENTS = "adjustments"

    @property
    def display_sign(self) -> int:
        """+1 where the balance reads as-is, -1 for money the school holds."""
        return -1 if self in _HELD else 1


_HELD = frozenset({AccountKind.CASH_DRAWER, AccountKind.ONLINE_CLEARING, AccountKind.CHEQUES,
                   AccountKind.BANK})


class TransactionKind(enum.StrEnum):
    MEAL = "meal"
    TOPUP = "topup"
    REFUND = "refund"
    CORRECTION = "correction"
    REVERSAL = "reversal"
    TRANSFER = "transfer"  # e.g. cash moved from a till's drawer to the office safe


def _enum_column(enum_cls: type[enum.Enum], *, name: str) -> Any:
    return Field(sa_column=Column(
        SAEnum(enum_cls, name=name, native_enum=False, validate_strings=True,
               values_callable=lambda e: [m.value for m in e], length=32),
        nullable=False,
    ))


def _utc(*, nullable: bool = False) -> Any:
    return Field(default_factory=None if nullable else utcnow,
                 sa_column=Column(UTCDateTime(), nullable=nullable))


def _cents(*, default: int | None = None, nullable: bool = False) -> Any:
    # BIGINT: PostgreSQL's INTEGER would cap a school's revenue at 21 million euros.
    return Field(default=default, sa_column=Column(BigInteger(), nullable=nullable))


class Account(SQLModel, table=True):
    """An account. A pupil's keeps its balance on its row, equal at every commit to the sum
    of its postings; any other's balance is that sum (`cardpay.ledger.balances`) and its
    `balance_cents` stays 0."""

    __table_args__ = (
        CheckConstraint("(kind = 'pupil_lunch') = (pupil_id IS NOT NULL)",
                        name="ck_account_pupil_iff_lunch"),
        CheckConstraint("device_id IS NULL OR kind = 'cash_drawer'",
                        name="ck_account_device_only_drawer"),
        # Only a pupil's account keeps its balance (and a floor) on its row; any other's
        # is the sum of its postings, so no row is updated by every tap (migration 0011;
        # triggers there on SQLite).
        CheckConstraint("kind = 'pupil_lunch' OR (balance_cents = 0 AND floor_cents IS NULL)",
                        name="ck_account_balance_kept"),
        Index("ux_account_pupil", "pupil_id", unique=True,
              sqlite_where=text("pupil_id IS NOT NULL"),
              postgresql_where=text("pupil_id IS NOT NULL")),
        Index("ux_account_device", "device_id", unique=True,
              sqlite_where=text("device_id IS NOT NULL"),
              postgresql_where=text("device_id IS NOT NULL")),
        # One revenue, clearing, ... account per school, and one office cash drawer.
        Index("ux_account_school_kind", "school_id", "kind", unique=True,
              sqlite_where=text("pupil_id IS NULL AND device_id IS NULL"),
              postgresql_where=text("pupil_id IS NULL AND device_id IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    kind: AccountKind = _enum_column(AccountKind, name="account_kind")
    pupil_id: int | None = Field(default=None, foreign_key="pupil.id")
    device_id: int | None = Field(default=None, foreign_key="device.id")
    balance_cents: int = _cents(default=0)
    # The lowest balance a debit may leave (0: no overdraft; -500: up to 5.00 owed);
    # None: no floor, as for revenue and cash accounts.
    floor_cents: int | None = _cents(nullable=True)
    created_at: datetime = _utc()
    # A pupil's account closed when the pupil left (cardpay.leaving): no more meals or
    # top-ups, only the settlement of what is left on it.
    closed_at: datetime | None = _utc(nullable=True)


class LedgerTransaction(SQLModel, table=True):
    """One economic event; its postings sum to zero. Never edited, only reversed."""

    __tablename__ = "ledger_transaction"

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    kind: TransactionKind = _enum_column(TransactionKind, name="transaction_kind")
    # The idempotency key: a till's tap id, a form's nonce, a webhook's event id.
    client_id: str = Field(max_length=128, unique=True)
    created_at: datetime = _utc()
    # When it happened, if earlier than when it was posted (a tap made offline).
    occurred_at: datetime = _utc()
    actor_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    actor_device_id: int | None = Field(default=None, foreign_key="device.id")
    memo: str = Field(default="", max_length=500)
    # Unique: the database refuses a second reversal of the same transaction.
    reverses_id: int | None = Field(
        default=None,
        sa_column=Column(ForeignKey("ledger_transaction.id"), unique=True, nullable=True),
    )


class Posting(SQLModel, table=True):
    """One leg of a transaction: a signed amount on one account. Never updated or deleted."""

    __table_args__ = (
        CheckConstraint("amount_cents <> 0", name="ck_posting_nonzero"),
        # An account's balance summed from this index alone (a system account's balance).
        Index("ix_posting_account_amount", "account_id", "amount_cents"),
    )

    id: int | None = Field(default=None, primary_key=True)
    transaction_id: int = Field(foreign_key="ledger_transaction.id", index=True)
    account_id: int = Field(foreign_key="account.id")
    amount_cents: int = _cents()


class Card(SQLModel, table=True):
    """A card held by one pupil for its whole life; its UID is never linked to anyone else."""

    __table_args__ = (
        Index("ux_card_active_pupil", "pupil_id", unique=True,
              sqlite_where=text("status = 'active'"),
              postgresql_where=text("status = 'active'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    pupil_id: int = Field(foreign_key="pupil.id", index=True)
    kind: CardKind = _enum_column(CardKind, name="card_kind")
    # Upper-case hex of the 4, 7 or 10 byte UID.
    uid: str = Field(max_length=20, unique=True)
    status: CardStatus = _enum_column(CardStatus, name="card_status")
    # NTAG 424 DNA read counter of the last accepted tap (anti-replay); None before any.
    last_sun_counter: int | None = None
    # NTAG 424 DNA key version Moulin personalised the card with (cardpay.card_keys);
    # None for a card personalised elsewhere or before key versions, read as version 1.
    key_version: int | None = None
    created_at: datetime = _utc()
    status_changed_at: datetime = _utc()


class CanteenSettings(SQLModel, table=True):
    """One school's canteen rules (see cardpay.rules.CanteenRules); defaults when absent."""

    __tablename__ = "canteen_settings"

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", unique=True)
    # {"T1": 80, "T2": 150, ...}: price in cents per tariff band.
    prices_by_band: dict[str, int] = Field(default_factory=dict,
                                          sa_column=Column(JSON, nullable=False))
    default_price_cents: int = 350
    overdraft_floor_cents: int = 0
    # ISO weekdays the canteen serves, Monday = 0: "0134" is Mon, Tue, Thu, Fri.
    open_weekdays: str = Field(default="0134", max_length=7)
    service_start: time = time(11, 0)
    service_end: time = time(14, 30)
    one_meal_per_day: bool = True
    offline_allowance_cents: int = 700
    retap_window_seconds: int = 10


class Tap(SQLModel, table=True):
    """Every tap a till sent, with the verdict it got: the idempotency record for tap ids
    (refused taps post nothing, so the ledger alone cannot answer a retry)."""

    __table_args__ = (Index("ix_tap_card_read", "card_uid", "read_at"),
                      Index("ix_tap_pupil_read", "pupil_id", "read_at"),
                      # A SUN read counter is good for one tap of its card, whatever the
                      # order taps arrive in (cardpay.tap_decision).
                      Index("ux_tap_card_sun_counter", "card_id", "sun_key_version",
                            "sun_counter", unique=True,
                            sqlite_where=text("sun_counter IS NOT NULL"),
                            postgresql_where=text("sun_counter IS NOT NULL")))

    id: int | None = Field(default=None, primary_key=True)
    tap_id: str = Field(max_length=64, unique=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    card_uid: str = Field(max_length=20)
    card_id: int | None = Field(default=None, foreign_key="card.id")
    pupil_id: int | None = Field(default=None, foreign_key="pupil.id")
    read_at: datetime = _utc()
    received_at: datetime = _utc()
    decided_offline: bool = False
    accepted: bool
    reason: str = Field(max_length=32)
    price_cents: int = _cents(default=0)
    # The meal's ledger transaction is the one whose client id is "tap:<tap_id>".
    balance_after_cents: int | None = _cents(nullable=True)
    # The first tap this one repeats (the same card held or tapped again within seconds).
    repeat_of_id: int | None = Field(default=None, foreign_key="tap.id")
    # Something staff must look at: a copied or replayed card, a lost card presented,
    # an offline meal that took the account below its floor.
    alert: str = Field(default="", max_length=200)
    # The card proved itself with a valid NTAG 424 DNA SUN message on this tap (then
    # card_uid is the UID it proved); an unknown card tapped so may be enrolled as secure.
    sun_verified: bool = Field(
        default=False, sa_column=Column(Boolean(), nullable=False, server_default=false())
    )
    # The NTAG 424 DNA read counter this tap used up (None for a UID card, or a replay),
    # and the key version that signed it (a card personalised again counts from 0 again).
    sun_counter: int | None = None
    sun_key_version: int | None = None
    # What the till did when it decided alone (its journal says so on replay): None for a
    # tap the till showed as the server answered.
    till_accepted: bool | None = None


class Disagreement(enum.StrEnum):
    """How a till and the server came to differ on a tap, and so what was done."""

    CHARGE_REVERSED = "charge_reversed"  # the server charged late; the till had refused
    CHARGED_LATE = "charged_late"  # the server refused late; the till had served
    NOT_CHARGED = "not_charged"  # the till served; the meal cannot be charged (reason)
    NOTHING_TO_DO = "nothing_to_do"  # they differ, but no money moved either way


class TillDisagreement(SQLModel, table=True):
    """A tap on which the till and the server differed, and what was done about it; the
    staff's list (health page) and the audit log carry the same."""

    __tablename__ = "till_disagreement"

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    tap_row_id: int = Field(foreign_key="tap.id", unique=True)
    tap_id: str = Field(max_length=64)
    device_id: int = Field(foreign_key="device.id")
    pupil_id: int | None = Field(default=None, foreign_key="pupil.id")
    till_accepted: bool
    server_accepted: bool  # the server's first verdict
    server_reason: str = Field(max_length=32)
    kind: Disagreement = _enum_column(Disagreement, name="disagreement")
    # The transaction that settled it (a reversal, a late charge), if any.
    transaction_id: int | None = Field(default=None, foreign_key="ledger_transaction.id")
    amount_cents: int = _cents(default=0)  # what was charged (+) or given back (-)
    read_at: datetime = _utc()
    settled_at: datetime = _utc()
