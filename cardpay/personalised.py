"""What the database keeps of NTAG 424 DNA personalisation: which key version a card holds
(so its SUN messages are checked with those keys and no older ones), and the pupil it
goes to. The chip's side is `hardware.readers.ntag424_personalise`; this module never
touches a card.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session

from cardpay import cards
from cardpay.card_keys import FACTORY_VERSION
from cardpay.errors import CardUnavailableError, SunForgedError
from cardpay.models import Card, CardKind, CardStatus
from cardpay.sun import Keyring, SunMessage, VerifiedTap
from school import audit
from school.clock import Clock, utcnow
from school.models import Pupil

logger = logging.getLogger(__name__)


def stored_version(session: Session, uid: bytes) -> int | None:
    """The key version recorded for this card; None when unknown here."""
    card = cards.find_by_uid(session, uid)
    return card.key_version if card is not None else None


def target_version(session: Session, uid: bytes, keyring: Keyring) -> int:
    """The version a card gets now: the next after the one recorded (its read counter
    restarts, so its old messages must not verify again), or the newest master's first.
    Stable across attempts: the database changes only once the card is done."""
    return keyring.versions.next_version(stored_version(session, uid))


def check_first_message(keyring: Keyring, uid: bytes, version: int, url: str) -> VerifiedTap:
    """The SUN message read right after personalising must verify with the new keys."""
    tap = keyring.verify(SunMessage.from_url(url), version_of=lambda _uid: version)
    if tap.uid != uid or tap.key_version != version:
        raise SunForgedError("the card's first message does not carry its own UID")
    return tap


def record(*, session: Session, uid: bytes, tap: VerifiedTap, pupil: Pupil | None,
           actor_user_id: int | None = None, clock: Clock = utcnow) -> Card | None:
    """Record a card personalised to ``tap.key_version``: link it to ``pupil`` (issue it
    as a secure card), or update the card already known. Its last counter becomes the
    one just read, so that message cannot be replayed. Commits."""
    card = cards.find_by_uid(session, uid)
    if card is None and pupil is None:
        return None  # a batch card: the office links it at its first tap
    if card is None:
        assert pupil is not None
        card = cards.issue_card(session=session, pupil=pupil, uid=uid, kind=CardKind.NTAG424,
                                actor_user_id=actor_user_id, clock=clock)
    elif pupil is not None and card.pupil_id != pupil.id:
        raise CardUnavailableError("this card belongs to another pupil")
    card.kind = CardKind.NTAG424
    card.key_version, card.last_sun_counter = tap.key_version, tap.counter
    session.add(card)
    _audit(session, card, "card.personalised", actor_user_id, key_version=tap.key_version)
    session.commit()
    logger.info("card %s personalised, key version %s", cards.mask_uid(card.uid),
                tap.key_version)
    return card


def record_returned(*, session: Session, uid: bytes, actor_user_id: int | None = None,
                    clock: Clock = utcnow) -> Card | None:
    """A card given back with factory keys: retired (its history stays with its pupil)
    and no longer holding any key version. Commits."""
    card = cards.find_by_uid(session, uid)
    if card is None:
        return None
    if card.status is not CardStatus.RETIRED:
        if card.status is CardStatus.LOST:
            raise CardUnavailableError("a card reported lost is not taken back")
        cards.set_status(session=session, card=card, status=CardStatus.RETIRED,
                         actor_user_id=actor_user_id, clock=clock)
    card.key_version = FACTORY_VERSION
    session.add(card)
    _audit(session, card, "card.factory_keys", actor_user_id)
    session.commit()
    return card


def _audit(session: Session, card: Card, action: str, actor_user_id: int | None,
           **detail: Any) -> None:
    pupil = session.get(Pupil, card.pupil_id)
    audit.record(session, action=action, school_id=pupil.school_id if pupil else None,
                 actor_user_id=actor_user_id, target_type="card", target_id=card.id or "",
                 uid=cards.mask_uid(card.uid), **detail)
