"""Card kinds and statuses as plain enums, shared by the ledger's tables and by code that
must not load the database layer (the canteen rules, the reader daemon)."""

from __future__ import annotations

import enum


class CardKind(enum.StrEnum):
    UID = "uid"  # identified by UID alone: copyable, and shown as such
    NTAG424 = "ntag424"  # NTAG 424 DNA, each tap proven by its SUN CMAC


class CardStatus(enum.StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"  # may be unblocked
    LOST = "lost"  # final: never active again, never linked to anyone
    RETIRED = "retired"  # final
