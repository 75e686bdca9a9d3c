"""Cards over a pupil's life, and telling a genuine tap from a copy or a replay."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from cardpay import cards
from cardpay.accounts import pupil_account
from cardpay.errors import (
    CardNotUsableError,
    CardStatusError,
    CardUnavailableError,
    InvalidUidError,
    SunForgedError,
    SunRefusedError,
    SunReplayedError,
    UnknownCardError,
)
from cardpay.ledger import post
from cardpay.models import Card, CardKind, CardStatus, TransactionKind
from cardpay.sun import Keyring, SunMessage
from school.db import immediate_session
from school.models import Pupil
from tests import factories
from tests.cardpay.cardsim import card_tap
from tests.conftest import FakeClock
from tests.factories import SmallSchool

KEYS = Keyring(b"k" * 32)
UID = bytes.fromhex("04A1B2C3D4E5F6")


def _tap(counter: int, uid: bytes = UID) -> SunMessage:
    return card_tap(KEYS.meta_read, KEYS.file_read(uid), uid, counter)


def _issue(session: Session, pupil: Pupil, uid: str | bytes = UID,
           kind: CardKind = CardKind.NTAG424, **kwargs: object) -> Card:
    return cards.issue_card(session=session, pupil=pupil, uid=uid, kind=kind, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("raw", "uid"), [
    ("04:a1:b2:c3:d4:e5:f6", "04A1B2C3D4E5F6"), ("deadbeef", "DEADBEEF"),
    (bytes(range(10)), "00010203040506070809"), (" 04 a1 b2 c3 ", "04A1B2C3"),
])
def test_uids_are_normalised(raw: str | bytes, uid: str) -> None:
    assert cards.normalise_uid(raw) == uid


@pytest.mark.parametrize("raw", ["", "04A1B2", "04A1B2C3D", "XXA1B2C3", "04A1B2C3D4E5F6A7"])
def test_malformed_uids_are_refused(raw: str) -> None:
    with pytest.raises(InvalidUidError):
        cards.normalise_uid(raw)


def test_a_uid_is_masked_in_logs() -> None:
    assert cards.mask_uid("04A1B2C3D4E5F6") == "04A1…F6"


def test_replacing_a_card_keeps_the_account_and_history(
    session: Session, small_school: SmallSchool, clock: FakeClock
) -> None:
    lea = small_school.pupils[0]
    first = _issue(session, lea, clock=clock)
    account = pupil_account(session=session, pupil=lea)
    school_id = lea.school_id
    post(session=session, school_id=school_id, kind=TransactionKind.CORRECTION,
         client_id="gift", legs=[(account, 500), (pupil_account(
             session=session, pupil=small_school.pupils[1], floor_cents=None), -500)])
    clock.advance(days=30)
    second = _issue(session, lea, uid="04112233", kind=CardKind.UID,
                    replaced_status=CardStatus.LOST, clock=clock)
    session.refresh(first)
    assert (first.status, second.status) == (CardStatus.LOST, CardStatus.ACTIVE)
    assert first.status_changed_at == clock.now
    assert pupil_account(session=session, pupil=lea).balance_cents == 500
    actions = session.execute(text("SELECT action FROM audit_event WHERE target_type = 'card' "
                                   "ORDER BY id")).scalars().all()
    assert actions == ["card.issue", "card.replaced", "card.issue"]


def test_issuing_the_same_card_again_returns_it(session: Session,
                                                small_school: SmallSchool) -> None:
    card = _issue(session, small_school.pupils[0])
    assert _issue(session, small_school.pupils[0], uid=UID.hex().lower()).id == card.id


def test_a_uid_is_never_linked_to_anyone_else_nor_reused(
    session: Session, small_school: SmallSchool
) -> None:
    lea, hugo = small_school.pupils[:2]
    card = _issue(session, lea)
    with pytest.raises(CardUnavailableError, match="another pupil"):
        _issue(session, hugo)
    cards.retire(session=session, card=card)
    with pytest.raises(CardUnavailableError, match="another pupil"):
        _issue(session, hugo)
    with pytest.raises(CardUnavailableError, match="never used again"):
        _issue(session, lea)


def test_status_changes_follow_the_cards_life(session: Session,
                                              small_school: SmallSchool) -> None:
    card = _issue(session, small_school.pupils[0])
    cards.block(session=session, card=card)
    cards.unblock(session=session, card=card)
    cards.mark_lost(session=session, card=card)
    for forbidden in (CardStatus.ACTIVE, CardStatus.BLOCKED):
        with pytest.raises(CardStatusError):
            cards.set_status(session=session, card=card, status=forbidden)
    cards.retire(session=session, card=card)
    with pytest.raises(CardStatusError):
        cards.retire(session=session, card=card)


def test_a_blocked_card_is_replaced_too(session: Session, small_school: SmallSchool) -> None:
    lea = small_school.pupils[0]
    old = _issue(session, lea)
    cards.block(session=session, card=old)
    _issue(session, lea, uid="04112233", kind=CardKind.UID)
    session.refresh(old)
    assert old.status is CardStatus.RETIRED  # so unblocking it cannot make two active


def test_identify_by_uid(session: Session, small_school: SmallSchool) -> None:
    plain = _issue(session, small_school.pupils[0], uid="04112233", kind=CardKind.UID)
    _issue(session, small_school.pupils[1])
    assert cards.identify_uid(session, "04:11:22:33").id == plain.id
    with pytest.raises(UnknownCardError):
        cards.identify_uid(session, "04445566")
    with pytest.raises(SunRefusedError, match="without its signature"):
        cards.identify_uid(session, UID)


def test_a_genuine_tap_identifies_the_card_once(session: Session,
                                                small_school: SmallSchool) -> None:
    card = _issue(session, small_school.pupils[0])
    assert cards.identify_sun(session=session, message=_tap(5), keyring=KEYS).id == card.id
    session.commit()
    for replayed in (5, 4, 0):
        with pytest.raises(SunReplayedError):
            cards.identify_sun(session=session, message=_tap(replayed), keyring=KEYS)
    assert cards.identify_sun(session=session, message=_tap(6), keyring=KEYS).id == card.id
    session.commit()
    session.refresh(card)
    assert card.last_sun_counter == 6


def test_a_flipped_bit_is_refused_and_consumes_nothing(session: Session,
                                                       small_school: SmallSchool) -> None:
    card = _issue(session, small_school.pupils[0])
    genuine = _tap(9)
    forged = SunMessage(genuine.picc_data, genuine.cmac[:-1] + bytes([genuine.cmac[-1] ^ 1]))
    with pytest.raises(SunForgedError):
        cards.identify_sun(session=session, message=forged, keyring=KEYS)
    session.refresh(card)
    assert card.last_sun_counter is None
    assert cards.identify_sun(session=session, message=genuine, keyring=KEYS).id == card.id


def test_sun_refusals_for_cards_not_issued_as_secure(session: Session,
                                                     small_school: SmallSchool) -> None:
    with pytest.raises(UnknownCardError):
        cards.identify_sun(session=session, message=_tap(1), keyring=KEYS)
    _issue(session, small_school.pupils[0], kind=CardKind.UID)
    with pytest.raises(SunRefusedError, match="by UID only"):
        cards.identify_sun(session=session, message=_tap(1), keyring=KEYS)


def test_a_blocked_card_is_identified_but_not_usable(session: Session,
                                                     small_school: SmallSchool) -> None:
    card = _issue(session, small_school.pupils[0])
    cards.check_usable(card)
    cards.block(session=session, card=card)
    found = cards.identify_sun(session=session, message=_tap(1), keyring=KEYS)
    with pytest.raises(CardNotUsableError, match="blocked"):
        cards.check_usable(found)


def test_one_message_sent_from_many_tills_at_once_is_accepted_once(
    any_engine: Engine,
) -> None:
    with Session(any_engine) as session:
        room = factories.classroom(session, factories.school(session), "CP")
        _issue(session, factories.pupil(session, room, "Léa", "Martin"))
    outcomes: list[str] = []
    start = threading.Barrier(6)

    def till() -> None:
        start.wait()
        # A till's session on SQLite takes the write lock first (BEGIN IMMEDIATE): a plain
        # one would read, then fail to upgrade to a write with 'database is locked'.
        with immediate_session(any_engine) as session:
            try:
                cards.identify_sun(session=session, message=_tap(3), keyring=KEYS)
                session.commit()
                outcomes.append("accepted")
            except SunReplayedError:
                outcomes.append("replayed")
            except Exception as exc:  # shown by the assertion below
                outcomes.append(repr(exc))

    threads = [threading.Thread(target=till) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["accepted"] + ["replayed"] * 5
