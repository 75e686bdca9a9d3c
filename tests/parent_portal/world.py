"""Two schools with two families each, every kind of record a page can name by id, and a
signed-in browser session for anyone: the ground the security suites walk on.

Names are distinctive, so a test can tell from a page's text whose data it shows.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from cardpay import cards, office, topups
from cardpay.account_models import Receipt, TopUpIntent
from cardpay.models import Card, CardKind, LedgerTransaction
from cardpay.payments.demo import DemoProvider
from parent_portal.sessions import SESSION_COOKIE, start_session
from school import photos
from school.db import make_engine
from school.devices import add_device
from school.models import (
    ClassroomStaff,
    ClosedDay,
    Device,
    DeviceKind,
    Pupil,
    Role,
    School,
    User,
)
from school.people import grant_role, link_guardian
from school.settings import Settings
from tests import factories
from tests.conftest import FakeClock
from webcam import admin, consents, schedule
from webcam.models import BroadcastSlot, Camera, CameraConsent

STAFF = (Role.TEACHER, Role.CASHIER, Role.OFFICE, Role.ADMIN)
# Typed by someone into a pupil's record and a room's name: every page must escape them.
XSS = ('<script>alert("allergy")</script>', '<img src=x onerror=alert("room")>')
# Every pupil's tariff band: only office and admin staff (and the pupil's guardians) may
# read it (docs/accounts.md, 'What each role sees of a pupil').
TARIFF_BAND = "QF-tranche-7"
# school slug → rooms (the first is its teacher's) → families: (parent, pupils with room)
PLAN = {
    "alpha": ("École Alpha", ["Salle Azur", f"Salle Bleuet {XSS[1]}"], [
        ("Aurore Vasseur", [("Anouk", "Vasseur", 0)]),
        ("Bruno Quenot", [("Basile", "Quenot", 0), ("Céleste", "Quenot", 1)]),
    ]),
    "beta": ("École Bêta", ["Salle Cobalt", "Salle Dune"], [
        ("Denis Ferrand", [("Dorian", "Ferrand", 0)]),
        ("Estelle Mirabeau", [("Elsa", "Mirabeau", 1)]),
    ]),
}


@dataclass
class Family:
    parent: User
    pupils: list[Pupil]
    cards: list[Card] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    transactions: list[LedgerTransaction] = field(default_factory=list)
    intents: list[TopUpIntent] = field(default_factory=list)

    def names(self) -> set[str]:
        """Every name of this family a page could show: pupils' and the parent's."""
        found = {self.parent.full_name}
        for pupil in self.pupils:
            found |= {pupil.first_name, pupil.last_name}
        return found


@dataclass
class Campus:
    school: School
    rooms: list
    families: list[Family]
    staff: dict[Role, User]
    till: Device
    till_token: str
    cameras: list[Camera]
    slots: list[BroadcastSlot]
    consents: list[CameraConsent]
    closed_day: ClosedDay

    @property
    def teacher_room(self) -> int:
        assert self.rooms[0].id is not None
        return int(self.rooms[0].id)


@dataclass
class World:
    campuses: list[Campus]

    def names_outside(self, allowed: set[int]) -> set[str]:
        """The names of every family whose pupils are not all in `allowed` (pupil ids)."""
        return {name for campus in self.campuses for family in campus.families
                if not {p.id for p in family.pupils} <= allowed for name in family.names()}


def _photo() -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((60, 48, 3), 128, dtype=np.uint8))
    assert ok
    return bytes(data.tobytes())


def _family(session: Session, campus_slug: str, school: School, rooms: list,
            parent_name: str, members: list[tuple[str, str, int]], data_dir: Path,
            now: datetime) -> Family:
    first = parent_name.split(" ", 1)[0]
    parent = factories.user(session, f"{first.lower()}@{campus_slug}.example.org",
                            name=parent_name)
    pupils = [factories.pupil(session, rooms[room], name, surname, allergies=XSS[0],
                              tariff_band=TARIFF_BAND)
              for name, surname, room in members]
    family = Family(parent, pupils)
    for pupil in pupils:
        assert pupil.id is not None
        link_guardian(session=session, user=parent, pupil=pupil, starts_on=factories.START)
        pupil.photo_path = photos.store(data_dir, pupil.school_id, pupil.id, _photo())
        session.add(pupil)
        family.cards.append(cards.issue_card(session=session, pupil=pupil,
                                             uid=uuid.uuid4().hex[:14], kind=CardKind.UID))
        client_id = f"world-{uuid.uuid4()}"
        receipt = office.office_topup(
            session=session, pupil=pupil, amount_cents=2000, tender=office.Tender.CASH,
            client_id=client_id, actor=office.Actor(user_id=None, ip=""), clock=lambda: now)
        family.receipts.append(receipt)
        session.commit()
        family.transactions.append(session.exec(
            select(LedgerTransaction).where(LedgerTransaction.client_id == client_id)).one())
    intent, _ = topups.start_topup(
        session=session, provider=DemoProvider(secret="world"), pupil=pupils[0], payer=parent,
        amount_cents=1500, urls=topups.CheckoutUrls(success="/", cancel="/"), clock=lambda: now)
    family.intents.append(intent)
    return family


def _campus(session: Session, slug: str, settings: Settings, now: datetime) -> Campus:
    name, room_names, family_plan = PLAN[slug]
    school = factories.school(session, slug=slug, name=name)
    rooms = [factories.classroom(session, school, room) for room in room_names]
    staff = {}
    for role in STAFF:
        staff[role] = factories.user(session, f"{role.value}@{slug}.example.org",
                                     name=f"{role.value.title()} {name}")
        grant_role(session=session, user=staff[role], school=school, role=role)
    session.add(ClassroomStaff(classroom_id=rooms[0].id or 0, user_id=staff[Role.TEACHER].id or 0))
    session.commit()
    families = [_family(session, slug, school, rooms, parent, members, settings.data_dir, now)
                for parent, members in family_plan]
    till, token = add_device(session=session, school=school, kind=DeviceKind.TILL, name="Cantine")
    secret = settings.effective_secret_key()
    cameras, slots, consent_rows = [], [], []
    for index, room in enumerate(rooms):
        cameras.append(admin.add_camera(session=session, classroom=room, name=f"Caméra {index}",
                                        source="http://192.0.2.1/video.mjpg", secret_key=secret,
                                        actor_user_id=staff[Role.ADMIN].id or 0))
        slots.append(schedule.add_slot(session=session, classroom=room, weekday=1,
                                       starts=time(8, 30), ends=time(11, 30),
                                       actor_user_id=staff[Role.ADMIN].id or 0))
        guardian = families[0].parent if index == 0 else families[1].parent
        consent_rows.append(consents.record_consent(
            session=session, classroom=room, user_id=guardian.id or 0, document_ref="dossier",
            actor_user_id=staff[Role.ADMIN].id or 0, now=now, today=now.date()))
    closed = schedule.add_closed_day(session=session, school_id=school.id or 0,
                                     day=date(2026, 12, 24), label="Noël",
                                     actor_user_id=staff[Role.ADMIN].id or 0)
    session.commit()
    return Campus(school, rooms, families, staff, till, token, cameras, slots, consent_rows,
                  closed)


def build(session: Session, settings: Settings, now: datetime) -> World:
    world = World([_campus(session, slug, settings, now) for slug in PLAN])
    for obj in list(session.identity_map.values()):
        session.refresh(obj)  # load every attribute now; tests read them after commits
    session.commit()
    return world


@dataclass
class Ground:
    """A world on a database of its own, for fixtures that outlive one test."""

    settings: Settings
    engine: Engine
    clock: FakeClock
    world: World


def standalone(tmp: Path, migrated: Path) -> Ground:
    """A copy of the migrated template database in `tmp`, with the world built on it;
    cameras are not captured (the security suites never watch them)."""
    settings = Settings(environment="test", data_dir=tmp / "var", secret_key="t" * 40,
                        database_url=f"sqlite:///{tmp / 'moulin.db'}", capture_cameras=False)
    shutil.copy(migrated, tmp / "moulin.db")
    engine = make_engine(settings.effective_database_url)
    clock = FakeClock()
    with Session(engine, expire_on_commit=False) as session:
        built = build(session, settings, clock())
    return Ground(settings, engine, clock, built)


def session_cookie(session: Session, user: User, settings: Settings,
                   now: datetime) -> tuple[dict[str, str], str]:
    """A signed-in browser's cookie and anti-forgery token, without the password round trip
    (argon2 costs tens of milliseconds per sign-in)."""
    web_session, token = start_session(session=session, user=user, now=now, settings=settings,
                                       ip="127.0.0.1", user_agent="security suite")
    session.commit()
    return {SESSION_COOKIE: token}, web_session.csrf_token
