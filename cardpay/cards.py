"""Pupils' cards: issuing, blocking, losing and retiring them, and knowing one when tapped.

A card's UID is linked to one pupil forever: a card lost, retired or held by someone else
is never issued again (the database refuses it too, see migration 0002). Replacing a card
leaves the pupil's account and history where they were: they belong to the pupil.
"""

from __future__ import annotations

import logging
import string
from datetime import datetime
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from cardpay.errors import (
    CardNotUsableError,
    CardStatusError,
    CardUnavailableError,
    InvalidUidError,
    SunRefusedError,
    SunReplayedError,
    UnknownCardError,
    UnknownGenuineCardError,
)
from cardpay.models import Card, CardKind, CardStatus
from cardpay.sun import Keyring, SunMessage
from school import audit
from school.clock import Clock, utcnow
from school.models import Pupil

logger = logging.getLogger(__name__)

A, B, L, R = CardStatus.ACTIVE, CardStatus.BLOCKED, CardStatus.LOST, CardStatus.RETIRED
# Lost and retired are final: a card found again may have been copied meanwhile.
NEXT_STATUSES: dict[CardStatus, frozenset[CardStatus]] = {
    A: frozenset({B, L, R}), B: frozenset({A, L, R}), L: frozenset({R}), R: frozenset(),
}
UID_BYTES = (4, 7, 10)


def normalise_uid(uid: str | bytes) -> str:
    """Upper-case hex of a 4, 7 or 10 byte UID, from bytes or text like '04:a1:b2 ...'."""
    text = uid.hex() if isinstance(uid, bytes) else "".join(uid.replace(":", "").split())
    if len(text) // 2 not in UID_BYTES or len(text) % 2 or \
            not set(text) <= set(string.hexdigits):
        raise InvalidUidError("not a card UID (4, 7 or 10 bytes in hex)")
    return text.upper()


def mask_uid(uid: str) -> str:
    """A UID fit for logs: enough to tell cards apart by eye, not to copy one."""
    return f"{uid[:4]}…{uid[-2:]}"


def find_by_uid(session: Session, uid: str | bytes) -> Card | None:
    return session.exec(select(Card).where(Card.uid == normalise_uid(uid))).first()


def issue_card(
    *, session: Session, pupil: Pupil, uid: str | bytes, kind: CardKind,
    replaced_status: CardStatus = R, actor_user_id: int | None = None, clock: Clock = utcnow,
) -> Card:
    """Give `pupil` a new active card; their active or blocked cards become
    `replaced_status` (retired, or lost). Issuing the same card again returns it."""
    uid = normalise_uid(uid)
    existing = find_by_uid(session, uid)
    if existing is not None:
        if existing.pupil_id == pupil.id and existing.status is A and existing.kind is kind:
            return existing
        raise CardUnavailableError(_why_unavailable(existing, pupil))
    if replaced_status not in (L, R):
        raise CardStatusError("a replaced card is retired or lost")
    now = clock()
    for old in _live_cards(session, pupil):
        _change(session, old, replaced_status, now, actor_user_id, "card.replaced")
    card = Card(pupil_id=pupil.id, kind=kind, uid=uid, status=A,  # type: ignore[arg-type]
                created_at=now, status_changed_at=now)
    session.add(card)
    try:
        session.flush()
    except IntegrityError as exc:  # another request linked this UID or card first
        session.rollback()
        raise CardUnavailableError("this card was just issued by someone else") from exc
    _audit(session, card, "card.issue", actor_user_id, pupil_id=pupil.id, kind=kind.value)
    session.commit()
    logger.info("card %s issued to pupil %s", mask_uid(uid), pupil.id)
    return card


def _why_unavailable(card: Card, pupil: Pupil) -> str:
    if card.pupil_id != pupil.id:
        return "this card belongs to another pupil and is never given to anyone else"
    if card.status in (L, R):
        return f"this card was {card.status.value} and is never used again"
    return f"this card is already the pupil's ({card.status.value}); change its status instead"


def _live_cards(session: Session, pupil: Pupil) -> list[Card]:
    return list(session.exec(select(Card).where(
        Card.pupil_id == pupil.id, col(Card.status).in_([A, B]))).all())


def retire_live_cards(*, session: Session, pupil: Pupil, actor_user_id: int | None = None,
                      clock: Clock = utcnow) -> int:
    """Retire the pupil's active and blocked cards, audited; does not commit (a pupil
    leaving retires them with the rest of the leaving). Returns how many."""
    live = _live_cards(session, pupil)
    for card in live:
        _change(session, card, R, clock(), actor_user_id, "card.retired")
    return len(live)


def set_status(*, session: Session, card: Card, status: CardStatus,
               actor_user_id: int | None = None, clock: Clock = utcnow) -> Card:
    """Move a card along its life (see NEXT_STATUSES), audited, and commit."""
    try:
        _change(session, card, status, clock(), actor_user_id, f"card.{status.value}")
        session.commit()
    except IntegrityError as exc:  # unblocking while the pupil holds another active card
        session.rollback()
        raise CardStatusError("the pupil already has another active card") from exc
    return card


def block(*, session: Session, card: Card, actor_user_id: int | None = None) -> Card:
    return set_status(session=session, card=card, status=B, actor_user_id=actor_user_id)


def unblock(*, session: Session, card: Card, actor_user_id: int | None = None) -> Card:
    return set_status(session=session, card=card, status=A, actor_user_id=actor_user_id)


def mark_lost(*, session: Session, card: Card, actor_user_id: int | None = None) -> Card:
    return set_status(session=session, card=card, status=L, actor_user_id=actor_user_id)


def retire(*, session: Session, card: Card, actor_user_id: int | None = None) -> Card:
    return set_status(session=session, card=card, status=R, actor_user_id=actor_user_id)


def _change(session: Session, card: Card, status: CardStatus, now: datetime,
            actor_user_id: int | None, action: str) -> None:
    if status not in NEXT_STATUSES[card.status]:
        raise CardStatusError(f"a {card.status.value} card cannot become {status.value}")
    before = card.status
    card.status, card.status_changed_at = status, now
    session.add(card)
    session.flush()  # before any new card's insert, for the one-active-card index
    _audit(session, card, action, actor_user_id, before=before.value, after=status.value)


def _audit(session: Session, card: Card, action: str, actor_user_id: int | None,
           **detail: Any) -> None:
    pupil = session.get(Pupil, card.pupil_id)
    audit.record(session, action=action, school_id=pupil.school_id if pupil else None,
                 actor_user_id=actor_user_id, target_type="card", target_id=card.id or "",
                 uid=mask_uid(card.uid), **detail)


def check_usable(card: Card) -> None:
    """Refuse a tap of a card that is not active (the caller alerts the cashier)."""
    if card.status is not A:
        assert card.id is not None
        raise CardNotUsableError(card.id, card.status.value)


def identify_uid(session: Session, uid: str | bytes) -> Card:
    """The card with this UID; a secure card must prove itself with SUN instead."""
    card = find_by_uid(session, uid)
    if card is None:
        raise UnknownCardError("this card is not known here")
    if card.kind is CardKind.NTAG424:
        raise SunRefusedError("this secure card was read without its signature: a copy?")
    return card


def identify_sun(*, session: Session, message: SunMessage, keyring: Keyring) -> Card:
    """The card that made this SUN message, after checking its CMAC and consuming its read
    counter. Does not commit: commit the counter with the tap's verdict, so that a till
    retrying the same tap finds its verdict by tap id and never meets its own counter."""
    tap = keyring.verify(message, version_of=lambda uid: _key_version(session, uid))
    card = find_by_uid(session, tap.uid)
    if card is None:
        raise UnknownGenuineCardError("this card is genuine but not issued here", tap.uid)
    if card.kind is not CardKind.NTAG424:
        raise SunRefusedError("this card is registered by UID only; re-issue it as secure")
    claim_counter(session=session, card=card, counter=tap.counter)
    return card


def _key_version(session: Session, uid: bytes) -> int | None:
    """The key version a card was personalised with: its messages verify with those keys
    only. None (unknown card, or personalised before versions): the keyring's versions."""
    card = find_by_uid(session, uid)
    return card.key_version if card is not None else None


def claim_counter(*, session: Session, card: Card, counter: int) -> None:
    """Record `counter` as the card's last read, if and only if it is greater than the
    last one: one compare-and-set statement, so two taps racing cannot both win."""
    result = session.exec(
        update(Card)
        .where(col(Card.id) == card.id,
               or_(col(Card.last_sun_counter).is_(None), col(Card.last_sun_counter) < counter))
        .values(last_sun_counter=counter)
        .execution_options(synchronize_session=False)
    )
    session.expire(card, ["last_sun_counter"])
    if result.rowcount != 1:
        logger.warning("replayed SUN counter %s for card %s", counter, mask_uid(card.uid))
        raise SunReplayedError("this card's message was already used: a copy or a replay")
