"""Two families in the same class with everything Moulin holds about a family: cards,
office and online top-ups, meals, limits, alerts and e-mails, camera consents and views,
sessions. For the export (nothing of one family in the other's) and the purge tests.

The Martins: Anne, guardian of Léa (CP) and Jules (CE1); Marc, Léa's father, is also the
guardian of Théo Durand (CE1), a child of another family. The Bernards: Paul, guardian of
Hugo (CP). The Bernards' amounts, UIDs and addresses are chosen to be found if they leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from cardpay import cards, office, topups
from cardpay.account_models import (
    IntentStatus,
    LowBalanceAlert,
    LunchSettings,
    OutboxEmail,
    Tender,
    TopUpIntent,
)
from cardpay.models import CanteenSettings, CardKind
from cardpay.payments.base import PaymentConfirmed
from cardpay.sun import Keyring
from cardpay.till import TapRequest, Till
from school.db import immediate_session
from school.devices import add_device
from school.models import Device, DeviceKind, Pupil, User, WebSession
from school.people import link_guardian
from school.security import token_digest
from tests import factories
from tests.conftest import FakeClock
from tests.factories import START, SmallSchool
from webcam.models import Camera, CameraConsent, CameraView

LEA_UID, JULES_UID, HUGO_UID, THEO_UID = "04A1B2C3D4E5F6", "04111111", "04B0B0B0B0B0B1", \
    "04DDEEFF"
# What must never show in the Martins' export.
BERNARD_TEXTS = ("Bernard", "Hugo", "other@example.org", HUGO_UID, "04B0…B1", "43,21", "47,78",
                 "7,77", "12,34", "203.0.113.77", "PaulBrowser", "bordereau", "Théo", "Durand",
                 "kiwi", "marc@example.org", THEO_UID)
BERNARD_CENTS = (4321, 777, 1234, 4778)


@dataclass
class World:
    s: SmallSchool
    till: Device
    camera: Camera
    marc: User
    theo: Pupil

    @property
    def lea(self) -> Pupil:
        return self.s.pupils[0]

    @property
    def hugo(self) -> Pupil:
        return self.s.pupils[1]

    @property
    def jules(self) -> Pupil:
        return self.s.pupils[2]


def _actor(s: SmallSchool) -> office.Actor:
    return office.Actor(user_id=s.office.id or 0)


def build(engine: Engine, session: Session, clock: FakeClock) -> World:
    s = factories.small_school(session)
    lea, hugo, jules = s.pupils
    hugo.tariff_band = "T9"
    session.add(CanteenSettings(school_id=s.school.id, prices_by_band={"T9": 777}))
    marc = factories.user(session, "marc@example.org", name="Marc Martin")
    theo = factories.pupil(session, s.rooms[1], "Théo", "Durand", allergies="kiwi")
    link_guardian(session=session, user=marc, pupil=lea, starts_on=START, relation="père")
    link_guardian(session=session, user=marc, pupil=theo, starts_on=START, relation="père")
    session.commit()
    for pupil, uid in ((lea, LEA_UID), (jules, JULES_UID), (hugo, HUGO_UID), (theo, THEO_UID)):
        cards.issue_card(session=session, pupil=pupil, uid=uid, kind=CardKind.UID, clock=clock)
    till, _ = add_device(session=session, school=s.school, kind=DeviceKind.TILL, name="Till 1")
    session.commit()
    _money(engine, s, theo, clock)
    for i, uid in enumerate((LEA_UID, HUGO_UID, THEO_UID)):
        Till(engine=engine, keyring=Keyring(b"k" * 32), clock=clock).tap(
            till, TapRequest(tap_id=f"tap-{i}", read_at=clock(), uid=uid))
    camera = _cameras(session, s, clock)
    _sessions_and_mail(session, s, clock)
    return World(s, till, camera, marc, theo)


def _money(engine: Engine, s: SmallSchool, theo: Pupil, clock: FakeClock) -> None:
    lea, hugo, _ = s.pupils
    with immediate_session(engine) as ledger:
        office.office_topup(session=ledger, pupil=ledger.get(Pupil, lea.id),  # type: ignore[arg-type]
                            amount_cents=2000, tender=Tender.CHEQUE, client_id="top-lea",
                            actor=_actor(s), reference="chèque 4411", clock=clock)
    with immediate_session(engine) as ledger:
        office.office_topup(session=ledger, pupil=ledger.get(Pupil, hugo.id),  # type: ignore[arg-type]
                            amount_cents=4321, tender=Tender.CASH, client_id="top-hugo",
                            actor=_actor(s), reference="bordereau 77", clock=clock)
    with immediate_session(engine) as ledger:
        office.office_topup(session=ledger, pupil=ledger.get(Pupil, theo.id),  # type: ignore[arg-type]
                            amount_cents=900, tender=Tender.CASH, client_id="top-theo",
                            actor=_actor(s), clock=clock)
    for payer, pupil, cents, name in ((s.parent, lea, 1500, "anne"),
                                      (s.other_parent, hugo, 1234, "paul")):
        with immediate_session(engine) as ledger:
            ledger.add(TopUpIntent(intent_id=f"ecole-{name}", school_id=s.school.id,
                                   pupil_id=pupil.id, user_id=payer.id, provider="demo",
                                   amount_cents=cents, currency="EUR",
                                   status=IntentStatus.PENDING, created_at=clock()))
            ledger.commit()
            topups.confirm(ledger, provider="demo", clock=clock, paid=PaymentConfirmed(
                client_id=f"pay-{name}", intent_id=f"ecole-{name}", provider_ref="",
                amount_cents=cents, currency="EUR"))
    with immediate_session(engine) as ledger:
        ledger.add(LunchSettings(pupil_id=lea.id, daily_limit_cents=600,
                                 updated_by_user_id=s.parent.id, updated_at=clock()))
        ledger.add(LunchSettings(pupil_id=hugo.id, daily_limit_cents=1234,
                                 updated_by_user_id=s.other_parent.id, updated_at=clock()))
        ledger.commit()


def _cameras(session: Session, s: SmallSchool, clock: FakeClock) -> Camera:
    session.rollback()  # a fresh snapshot: the ledger sessions wrote meanwhile
    camera = Camera(school_id=s.school.id, classroom_id=s.rooms[0].id, name="Caméra CP",
                    source_sealed="sealed", enabled=False)  # nothing to capture here
    session.add(camera)
    session.flush()
    for user, ip in ((s.parent, "198.51.100.5"), (s.other_parent, "203.0.113.77")):
        session.add(CameraConsent(classroom_id=s.rooms[0].id, user_id=user.id,
                                  capacity="guardian", document_ref=f"classeur {user.id}",
                                  given_at=clock(), recorded_by_user_id=s.office.id))
        for days in (1, 250):
            start = clock() - timedelta(days=days)
            session.add(CameraView(school_id=s.school.id, camera_id=camera.id, user_id=user.id,
                                   started_at=start, ended_at=start + timedelta(minutes=4),
                                   end_reason="closed", ip=ip, user_agent="Browser"))
    session.commit()
    return camera


def _sessions_and_mail(session: Session, s: SmallSchool, clock: FakeClock) -> None:
    hugo = s.pupils[1]
    for user, agent, ip in ((s.parent, "AnneBrowser/2.0", "198.51.100.5"),
                            (s.other_parent, "PaulBrowser/1.0", "203.0.113.77")):
        session.add(WebSession(token_sha256=token_digest(f"t-{user.id}"), user_id=user.id,
                               csrf_token="c" * 32, created_at=clock(), last_seen_at=clock(),
                               expires_at=clock() + timedelta(hours=1), ip=ip,
                               user_agent=agent))
    alert = LowBalanceAlert(school_id=s.school.id, pupil_id=hugo.id, balance_cents=120,
                            threshold_cents=500, created_at=clock())
    session.add(alert)
    session.flush()
    session.add(OutboxEmail(school_id=s.school.id, alert_id=alert.id, user_id=s.other_parent.id,
                            to_address="other@example.org", subject="Solde bas : Hugo",
                            body="Le solde de Hugo Bernard est bas.", created_at=clock()))
    session.commit()
