"""What the database keeps of personalising: the card's key version, the next version on
re-personalising, its first message consumed, and no message of an older version
accepted afterwards."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from cardpay import cards, personalised
from cardpay.errors import CardUnavailableError, SunForgedError, SunReplayedError
from cardpay.models import CardKind, CardStatus
from cardpay.sun import Keyring, SunMessage, VerifiedTap
from firmware_mocks.sun import build_sun_url
from tests.factories import SmallSchool

KEYRING = Keyring(bytes(range(16)))
UID = bytes.fromhex("04A1B2C3D4E5F6")


def _message(version: int, counter: int) -> str:
    keys = KEYRING.card_keys(UID, version)
    return build_sun_url("https://m.example/sun", uid=UID, counter=counter,
                         meta_key=keys.meta_read, file_key=keys.file_read).url


def _personalised(session: Session, version: int, counter: int, pupil: object) -> VerifiedTap:
    assert personalised.target_version(session, UID, KEYRING) == version
    tap = personalised.check_first_message(KEYRING, UID, version, _message(version, counter))
    personalised.record(session=session, uid=UID, tap=tap, pupil=pupil)  # type: ignore[arg-type]
    return tap


def test_a_card_is_linked_with_its_version_and_its_first_message_is_spent(
    session: Session, small_school: SmallSchool
) -> None:
    pupil = small_school.pupils[0]
    _personalised(session, 1, 1, pupil)
    card = cards.find_by_uid(session, UID)
    assert card is not None
    assert (card.pupil_id, card.kind, card.key_version) == (pupil.id, CardKind.NTAG424, 1)
    with pytest.raises(SunReplayedError):  # the message read while personalising
        cards.identify_sun(session=session, message=SunMessage.from_url(_message(1, 1)),
                           keyring=KEYRING)
    session.rollback()
    assert cards.identify_sun(session=session, message=SunMessage.from_url(_message(1, 2)),
                              keyring=KEYRING).id == card.id


def test_personalised_again_old_messages_no_longer_verify(
    session: Session, small_school: SmallSchool
) -> None:
    pupil = small_school.pupils[0]
    _personalised(session, 1, 1, pupil)
    old = _message(1, 90)  # a message of the old keys, never used: a copy kept somewhere
    _personalised(session, 2, 1, pupil)  # the counter restarted
    card = cards.find_by_uid(session, UID)
    assert card is not None
    assert card.key_version == 2
    with pytest.raises(SunForgedError):
        cards.identify_sun(session=session, message=SunMessage.from_url(old), keyring=KEYRING)
    session.rollback()
    assert cards.identify_sun(session=session, message=SunMessage.from_url(_message(2, 2)),
                              keyring=KEYRING).id == card.id


def test_a_first_message_with_other_keys_is_refused(session: Session) -> None:
    with pytest.raises(SunForgedError):
        personalised.check_first_message(KEYRING, UID, 2, _message(1, 1))


def test_a_batch_card_is_not_linked_and_another_pupil_s_card_is_refused(
    session: Session, small_school: SmallSchool
) -> None:
    tap = personalised.check_first_message(KEYRING, UID, 1, _message(1, 1))
    assert personalised.record(session=session, uid=UID, tap=tap, pupil=None) is None
    assert cards.find_by_uid(session, UID) is None
    personalised.record(session=session, uid=UID, tap=tap, pupil=small_school.pupils[0])
    with pytest.raises(CardUnavailableError):
        personalised.record(session=session, uid=UID, tap=tap, pupil=small_school.pupils[1])


def test_a_card_given_back_is_retired_and_stays_with_its_pupil(
    session: Session, small_school: SmallSchool
) -> None:
    pupil = small_school.pupils[0]
    _personalised(session, 1, 1, pupil)
    card = personalised.record_returned(session=session, uid=UID)
    assert card is not None
    assert (card.status, card.key_version, card.pupil_id) == (CardStatus.RETIRED, 0, pupil.id)
