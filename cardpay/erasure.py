"""Erasure of what the lunch accounts hold about a pupil once the retention period is over.

The ledger is never touched: accounts, transactions and postings keep every amount, so
balances and totals, and `moulin db check`, are the same after as before. What goes:

- card UIDs: each is replaced by '~' and a SHA-256 of the UID with a random salt that is
  not kept, so neither the UID nor the card in someone's hand can be linked back to the
  pupil's history (a plain hash of a 4-byte UID could be reversed by trying them all).
  The card rows stay, retired, because taps point at them. The database allows this one
  change to a lost or retired card (migration 0007_gdpr).
- taps: the UID they read becomes the card's new value and their alert text goes; who
  paid what and when (the pupil's pseudonymous id, price, verdict) stays.
- parents' limits and low-balance alerts with the e-mails sent about them; a receipt's
  cheque or transfer reference (its number, tender and amount stay, for the accounts).

Nothing here commits: `moulin.purge` runs every package's part in one transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, update
from sqlmodel import Session, col, select

from cardpay import cards
from cardpay.account_models import LowBalanceAlert, LunchSettings, OutboxEmail, Receipt
from cardpay.models import Card, Tap
from school.models import Pupil

ERASED_UID_PREFIX = "~"  # never produced by a reader: normalise_uid() accepts hex only


@dataclass
class CardpayErased:
    cards: int = 0
    taps: int = 0
    limits: int = 0
    alerts: int = 0
    emails: int = 0
    receipts: int = 0


def erased_uid(uid: str) -> str:
    """A value in place of `uid` that cannot be traced back to it (the salt is dropped)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.sha256(salt + uid.encode()).hexdigest()
    return ERASED_UID_PREFIX + digest[:19]


def erase_pupil(session: Session, pupil: Pupil, *, now: datetime,
                counts: CardpayErased) -> None:
    """Erase the pupil's card UIDs, taps' personal content, limits and alerts."""
    pupil_id = pupil.id
    # A pupil marked as left by other means than the leaving page may hold a live card.
    cards.retire_live_cards(session=session, pupil=pupil, clock=lambda: now)
    for card in session.exec(select(Card).where(Card.pupil_id == pupil_id)).all():
        if card.uid.startswith(ERASED_UID_PREFIX):
            continue
        old, card.uid = card.uid, erased_uid(card.uid)
        session.add(card)
        session.flush()
        counts.cards += 1
        # By UID as well as by card: the tap that enrolled the card was of an unknown one.
        taps = session.execute(
            update(Tap).where(or_(col(Tap.card_id) == card.id, col(Tap.card_uid) == old))
            .values(card_uid=card.uid, alert="")
        )
        counts.taps += taps.rowcount  # type: ignore[attr-defined]
    counts.limits += session.execute(
        delete(LunchSettings).where(col(LunchSettings.pupil_id) == pupil_id)
    ).rowcount  # type: ignore[attr-defined]
    alert_ids = select(LowBalanceAlert.id).where(LowBalanceAlert.pupil_id == pupil_id)
    counts.emails += session.execute(
        delete(OutboxEmail).where(col(OutboxEmail.alert_id).in_(alert_ids))
    ).rowcount  # type: ignore[attr-defined]
    counts.alerts += session.execute(
        delete(LowBalanceAlert).where(col(LowBalanceAlert.pupil_id) == pupil_id)
    ).rowcount  # type: ignore[attr-defined]
    counts.receipts += session.execute(
        update(Receipt).where(col(Receipt.pupil_id) == pupil_id, col(Receipt.reference) != "")
        .values(reference="")
    ).rowcount  # type: ignore[attr-defined]


def erase_mail_to(session: Session, *, user_id: int, address: str,
                  counts: CardpayErased) -> None:
    """Drop the e-mails queued or sent to a former guardian."""
    counts.emails += session.execute(
        delete(OutboxEmail).where(or_(col(OutboxEmail.user_id) == user_id,
                                      col(OutboxEmail.to_address) == address))
    ).rowcount  # type: ignore[attr-defined]


def purge_old_mail(session: Session, before: datetime, counts: CardpayErased) -> None:
    """Drop e-mails sent or given up before `before`: they were delivered long ago."""
    counts.emails += session.execute(
        delete(OutboxEmail).where(or_(col(OutboxEmail.sent_at) < before,
                                      col(OutboxEmail.abandoned_at) < before))
    ).rowcount  # type: ignore[attr-defined]
