"""What the till did is what the ledger ends with: one test per way the outside harness
found for the two to disagree (another school's card, a counter arriving late, an answer
arriving late, a UID that is not the signed one)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlmodel import Session, select

from cardpay import cards, disagreements
from cardpay.integrity import check_integrity
from cardpay.models import CardKind, Disagreement, LedgerTransaction, Tap, TransactionKind
from cardpay.snapshot import snapshot
from cardpay.till import TapRequest
from school.devices import add_device
from school.models import AuditEvent, Device, DeviceKind, School
from tests import factories
from tests.cardpay.cardsim import card_tap
from tests.cardpay.test_till import KEYS, UID_CLASSIC, UID_SECURE, Canteen, canteen

__all__ = ["canteen"]


def _sun_url(uid: bytes, counter: int) -> str:
    m = card_tap(KEYS.meta_read, KEYS.file_read(uid), uid, counter)
    return f"https://t.example/c?picc_data={m.picc_data.hex().upper()}&cmac={m.cmac.hex().upper()}"


def _tap(canteen: Canteen, *, uid: str, sun: str | None = None, offline: bool | None = None,
         tap_id: str | None = None, device=None):  # type: ignore[no-untyped-def]
    request = TapRequest(tap_id=tap_id or str(uuid.uuid4()), read_at=canteen.clock(), uid=uid,
                         sun_url=sun, offline_accepted=offline)
    return canteen.till.tap(device or canteen.device, request)


def _another_till(canteen: Canteen) -> Device:
    with Session(canteen.engine) as s:
        till, _ = add_device(session=s, school=canteen.s.school, kind=DeviceKind.TILL,
                             name="till-B")
        s.commit()
        s.refresh(till)
        s.expunge(till)
    return till


def _problems(canteen: Canteen) -> list[str]:
    with Session(canteen.engine) as s:
        return check_integrity(s)


def _listed(canteen: Canteen) -> list[tuple[str, Disagreement]]:
    with Session(canteen.engine) as s:
        rows = disagreements.listed(s, school_id=canteen.s.school.id or 0)
        return [(r.tap_id, r.kind) for r in rows]


# -- 1. a till of one school and another school's card -----------------------------------


def test_another_schools_card_is_not_known_here(canteen: Canteen) -> None:
    with Session(canteen.engine) as s:
        other = factories.school(s, slug="autre", name="École d'à côté")
        factories.classroom(s, other, "CM2")
        far_till, _ = add_device(session=s, school=other, kind=DeviceKind.TILL, name="far")
        s.commit()
        s.refresh(far_till)
        s.expunge(far_till)
        other_id = other.id
    before = canteen.balance(canteen.lea), canteen.balance(canteen.hugo)
    for verdict in (_tap(canteen, uid=UID_CLASSIC, device=far_till),
                    _tap(canteen, uid=UID_SECURE.hex(), sun=_sun_url(UID_SECURE, 3),
                         device=far_till)):
        assert (verdict.accepted, verdict.reason, verdict.pupil) == (False, "unknown_card", None)
        assert verdict.message == "Carte inconnue ici"
    assert (canteen.balance(canteen.lea), canteen.balance(canteen.hugo)) == before
    assert canteen.meals() == 0
    with Session(canteen.engine) as s:
        recorded = s.exec(select(Tap).where(Tap.device_id == far_till.id)).all()
        assert [t.pupil_id for t in recorded] == [None, None]
        far = snapshot(s, s.get_one(School, other_id), canteen.clock())
        assert far["cards"] == []
        assert far["pupils"] == []
    assert _problems(canteen) == []
    # The pupil's own school still serves them.
    assert _tap(canteen, uid=UID_CLASSIC).accepted


# -- 2. an NTAG 424 DNA counter that arrives after a higher one -------------------------


def test_a_meal_served_offline_is_charged_when_a_later_read_arrived_first(
    canteen: Canteen,
) -> None:
    """Till B served counter 5 offline; till A charged counter 6 online the next day;
    then B's journal sent its tap in. Both meals were served: both are charged."""
    till_b = _another_till(canteen)
    served_offline_at = canteen.clock()
    canteen.clock.advance(days=2)  # Thursday: the canteen is closed on Wednesdays
    online = _tap(canteen, uid=UID_SECURE.hex(), sun=_sun_url(UID_SECURE, 6))
    assert online.accepted
    late = TapRequest(tap_id=str(uuid.uuid4()), read_at=served_offline_at,
                      uid=UID_SECURE.hex(), sun_url=_sun_url(UID_SECURE, 5),
                      offline_accepted=True)
    verdict = canteen.till.tap(till_b, late)
    assert (verdict.accepted, verdict.reason, verdict.alert) == (True, "ok", "")
    assert canteen.meals() == 2
    assert canteen.balance(canteen.hugo) == 1000 - 2 * 350
    # Counter 5 is used now: the same message again, even from an offline till, is a copy.
    copy = _tap(canteen, uid=UID_SECURE.hex(), sun=_sun_url(UID_SECURE, 5), offline=True)
    assert (copy.accepted, copy.reason) == (False, "replayed")
    assert (copy.tap_id, Disagreement.NOT_CHARGED) in _listed(canteen)
    # A live tap with a counter below the highest seen, never used, is still refused.
    below = _tap(canteen, uid=UID_SECURE.hex(), sun=_sun_url(UID_SECURE, 4))
    assert (below.accepted, below.reason) == (False, "replayed")
    assert canteen.meals() == 2
    assert _problems(canteen) == []
    with Session(canteen.engine) as s:
        alerts = s.exec(select(AuditEvent).where(AuditEvent.action == "tap.alert")).all()
        assert len(alerts) == 1  # the live replay; the offline meal raised none


# -- 3. the server's answer arrives after the till decided alone -------------------------


def test_a_meal_the_till_refused_is_not_charged_though_the_server_accepted_late(
    canteen: Canteen,
) -> None:
    tap_id = str(uuid.uuid4())
    online = _tap(canteen, uid=UID_CLASSIC, tap_id=tap_id)  # committed; answer lost
    assert online.accepted
    assert canteen.balance(canteen.lea) == 650
    # The till had given up waiting, refused alone; its journal now says so.
    for _ in range(2):  # and a retry of the journal's send changes nothing more
        settled = _tap(canteen, uid=UID_CLASSIC, tap_id=tap_id, offline=False)
        assert (settled.accepted, settled.reason) == (False, "till_refused")
    assert canteen.balance(canteen.lea) == 1000
    assert _listed(canteen) == [(tap_id, Disagreement.CHARGE_REVERSED)]
    with Session(canteen.engine) as s:
        kinds = s.exec(select(LedgerTransaction.kind).order_by(LedgerTransaction.id)).all()
        assert kinds[-2:] == [TransactionKind.MEAL, TransactionKind.REVERSAL]
        audit = s.exec(select(AuditEvent).where(AuditEvent.action == "tap.disagreement")).one()
        assert audit.detail["kind"] == "charge_reversed"
        tap = s.exec(select(Tap).where(Tap.tap_id == tap_id)).one()
        assert (tap.accepted, tap.till_accepted, tap.price_cents) == (False, False, 0)
    assert _problems(canteen) == []
    # One-meal-a-day does not count the refused meal: the pupil can still eat today.
    canteen.clock.advance(minutes=1)
    assert _tap(canteen, uid=UID_CLASSIC).accepted


def test_a_meal_the_till_served_is_charged_though_the_server_refused_late(
    canteen: Canteen,
) -> None:
    with Session(canteen.engine) as s:
        card = cards.find_by_uid(s, UID_CLASSIC)
        assert card is not None
    assert _tap(canteen, uid=UID_CLASSIC).accepted
    canteen.clock.advance(minutes=5)
    tap_id = str(uuid.uuid4())
    second = _tap(canteen, uid=UID_CLASSIC, tap_id=tap_id)  # 'already eaten', answer lost
    assert (second.accepted, second.reason) == (False, "already_eaten")
    settled = _tap(canteen, uid=UID_CLASSIC, tap_id=tap_id, offline=True)
    assert settled.accepted
    assert canteen.meals() == 2
    assert canteen.balance(canteen.lea) == 300
    assert _listed(canteen) == [(tap_id, Disagreement.CHARGED_LATE)]
    assert _problems(canteen) == []


def test_a_card_refused_late_is_listed_as_a_meal_nobody_can_be_charged_for(
    canteen: Canteen,
) -> None:
    with Session(canteen.engine) as s:
        card = cards.find_by_uid(s, UID_CLASSIC)
        assert card is not None
        cards.mark_lost(session=s, card=card)
        s.commit()
    tap_id = str(uuid.uuid4())
    assert _tap(canteen, uid=UID_CLASSIC, tap_id=tap_id).reason == "card_lost"
    _tap(canteen, uid=UID_CLASSIC, tap_id=tap_id, offline=True)
    assert canteen.meals() == 0
    assert _listed(canteen) == [(tap_id, Disagreement.NOT_CHARGED)]


# -- 4. a UID that is not the one the SUN message signed --------------------------------


def test_a_genuine_message_under_another_cards_uid_is_refused(canteen: Canteen) -> None:
    other_uid = bytes.fromhex("04C0FFEE123456")
    with Session(canteen.engine) as s:
        cards.issue_card(session=s, pupil=s.merge(canteen.s.pupils[2]), uid=other_uid,
                         kind=CardKind.NTAG424)
        s.commit()
    verdict = _tap(canteen, uid=other_uid.hex(), sun=_sun_url(UID_SECURE, 9))
    assert (verdict.accepted, verdict.reason, verdict.pupil) == (False, "card_not_genuine", None)
    assert "signed UID" in verdict.alert
    assert canteen.meals() == 0
    assert canteen.balance(canteen.hugo) == 1000
    with Session(canteen.engine) as s:
        alert = s.exec(select(AuditEvent).where(AuditEvent.action == "tap.alert")).one()
        assert "signed UID" in alert.detail["alert"]
    # The card itself, with its own UID, still pays; a random ID (08…) is not compared.
    assert _tap(canteen, uid=UID_SECURE.hex(), sun=_sun_url(UID_SECURE, 10)).accepted
    canteen.clock.advance(days=2)
    assert _tap(canteen, uid="08A1B2C3", sun=_sun_url(UID_SECURE, 11)).accepted
    assert canteen.meals() == 2


def test_time_of_the_offline_meal_is_kept(canteen: Canteen) -> None:
    """A late-reported meal is dated when it was eaten, not when it was reported."""
    tap_id = str(uuid.uuid4())
    eaten_at = canteen.clock()
    _tap(canteen, uid=UID_CLASSIC, tap_id=tap_id)
    canteen.clock.advance(hours=1)
    canteen.clock.advance(minutes=1)
    _tap(canteen, uid=UID_CLASSIC, tap_id=tap_id, offline=False)
    with Session(canteen.engine) as s:
        [row] = disagreements.listed(s, school_id=canteen.s.school.id or 0)
        assert row.read_at == eaten_at
        assert row.settled_at == eaten_at + timedelta(hours=1, minutes=1)


def test_a_card_at_another_till_within_seconds_is_another_meal_not_a_re_tap(
    canteen: Canteen,
) -> None:
    """A re-tap is the same card again at the same till. At another till within seconds
    it is another tray: refused online (one meal a day), charged if that till served it
    offline. (As a re-tap, it once showed green at the second till for free.)"""
    till_b = _another_till(canteen)
    assert _tap(canteen, uid=UID_CLASSIC).accepted
    canteen.clock.advance(seconds=3)
    online = _tap(canteen, uid=UID_CLASSIC, device=till_b)
    assert (online.accepted, online.repeat, online.reason) == (False, False, "already_eaten")
    again_at_a = _tap(canteen, uid=UID_CLASSIC)  # at till A, within seconds: a re-tap
    assert (again_at_a.accepted, again_at_a.repeat) == (True, True)
    canteen.clock.advance(seconds=30)
    served = _tap(canteen, uid=UID_CLASSIC, device=till_b, offline=True)
    assert (served.accepted, served.repeat) == (True, False)
    assert canteen.meals() == 2
    assert canteen.balance(canteen.lea) == 1000 - 2 * 350
