"""A blank NTAG 424 DNA personalised with Moulin's keys is accepted at the till as genuine
at its first tap, and a copy of one of its SUN messages is refused."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from cardpay import personalised
from cardpay.till import TapRequest
from firmware_mocks.apdu import ApduSession
from firmware_mocks.cards import CardState, Kind
from firmware_mocks.ntag424_chip import Chip
from hardware.readers.ntag424 import Ntag424
from hardware.readers.ntag424_files import SunTemplate
from hardware.readers.ntag424_personalise import personalise, read_sun_url
from tests.cardpay.test_till import KEYS, NOON, Canteen
from tests.conftest import FakeClock
from tests.factories import SmallSchool

UID = bytes.fromhex("04BEEF00C0FFEE")


class OnReader:
    def __init__(self, chip: Chip) -> None:
        self.session = ApduSession(CardState(Kind.NTAG424_DNA, chip.uid, chip=chip))

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        answer = self.session.respond(apdu)
        return answer[:-2], int.from_bytes(answer[-2:], "big")


@pytest.fixture
def shop(engine: Engine, session: Session, small_school: SmallSchool, clock: FakeClock) -> Canteen:
    clock.now = NOON
    return Canteen(engine, session, small_school, clock)


def _tap(canteen: Canteen, url: str):  # type: ignore[no-untyped-def]
    request = TapRequest(tap_id=str(uuid.uuid4()), read_at=canteen.clock(), uid=UID.hex(),
                         sun_url=url)
    return canteen.till.tap(canteen.device, request)


def test_a_personalised_blank_card_taps_as_genuine_and_its_copy_is_refused(
    shop: Canteen, session: Session
) -> None:
    canteen = shop
    chip = Chip(uid=UID)
    jules = canteen.s.pupils[2]
    canteen.top_up(jules, 1000)
    session.commit()
    version = personalised.target_version(session, UID, KEYS)
    outcome = personalise(Ntag424(OnReader(chip)), UID,
                          keys_for=lambda v: KEYS.card_keys(UID, v).keys, version=version,
                          template=SunTemplate.for_base("https://moulin.example/sun"))
    assert outcome.sun_url is not None
    tap = personalised.check_first_message(KEYS, UID, version, outcome.sun_url)
    personalised.record(session=session, uid=UID, tap=tap, pupil=jules)

    first = read_sun_url(Ntag424(OnReader(chip)))
    assert first is not None
    verdict = _tap(canteen, first)
    assert verdict.accepted, verdict.reason
    assert verdict.pupil is not None
    assert verdict.pupil.name == "Jules Martin"
    copy = _tap(canteen, first)
    assert (copy.accepted, copy.reason) == (False, "replayed")
    spent = _tap(canteen, outcome.sun_url)  # the message read while personalising
    assert spent.accepted is False


def test_a_card_personalised_again_counts_afresh_and_its_old_messages_are_refused(
    shop: Canteen, session: Session
) -> None:
    """Personalised again, a card's read counter restarts: its new messages are meals
    (their counters were used under the old keys, not these), and a message signed with
    its old keys is refused at the till even though those keys still verify it."""
    canteen = shop
    chip = Chip(uid=UID)
    jules = canteen.s.pupils[2]
    canteen.top_up(jules, 2000)
    session.commit()
    template = SunTemplate.for_base("https://moulin.example/sun")
    old_messages = []
    for _ in range(2):
        with Session(canteen.engine) as office:  # a session of its own, as the office's
            version = personalised.target_version(office, UID, KEYS)
            outcome = personalise(Ntag424(OnReader(chip)), UID,
                                  keys_for=lambda v: KEYS.card_keys(UID, v).keys,
                                  version=version, template=template)
            assert outcome.sun_url is not None
            tap = personalised.check_first_message(KEYS, UID, version, outcome.sun_url)
            personalised.record(session=office, uid=UID, tap=tap,
                                pupil=office.merge(jules))
        message = read_sun_url(Ntag424(OnReader(chip)))
        assert message is not None
        if not old_messages:
            assert _tap(canteen, message).accepted  # version 1's counter 2: a meal
            old_messages.append(read_sun_url(Ntag424(OnReader(chip))))
            canteen.clock.advance(days=2)  # Thursday: a new school day
    again = _tap(canteen, message)  # version 2's counter 2 again: not a replay of v1's
    assert again.accepted, again.reason
    stale = _tap(canteen, old_messages[0])  # never used, but signed with the old keys
    assert (stale.accepted, stale.reason) == (False, "replayed")
    assert "earlier keys" in stale.alert
