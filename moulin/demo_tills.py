"""The demo's canteen: cards for a few demo pupils (NTAG 424 DNA and UID cards, a copy, a
lost card, a stranger), a till and an office reader. `moulin.demo_reader` runs the reader
side behind `/demo/tap`.

Kept apart from `demo_data` (the school, its people) so both can grow independently.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import time as day_time

from sqlmodel import Session, col, select

from cardpay import cards
from cardpay.accounts import pupil_account, school_account
from cardpay.ledger import post
from cardpay.models import AccountKind, CanteenSettings, CardKind, TransactionKind
from school.devices import add_device
from school.models import DeviceKind, Pupil, School

logger = logging.getLogger(__name__)

SECURE_CARDS, UID_CARDS = 3, 3
TOP_UP_CENTS = 2000
SEEN_COUNTER = 100  # secure cards were read this often before: a copy replays less


@dataclass(frozen=True)
class DemoHolder:
    key: str
    label: str
    uid: bytes
    secure: bool
    note: str = ""
    counter: int = 0  # NTAG 424: the read counter before the demo's first tap


@dataclass(frozen=True)
class DemoTills:
    till_id: int
    till_token: str
    office_id: int
    office_token: str
    holders: list[DemoHolder]


def _uid(i: int, secure: bool) -> bytes:
    # 7-byte UIDs throughout, so UID cards also work as NTAG215s on nfcpy's emulator.
    return bytes([0x04, 0x5E if secure else 0x1D, 0xD0, 0x00, i, 0x42, 0x80])


def seed_tills(session: Session, school: School) -> DemoTills:
    """Give the demo school its tills and, unless it has cards already, a few cards."""
    assert school.id is not None
    if (
        session.exec(select(CanteenSettings).where(CanteenSettings.school_id == school.id)).first()
        is None
    ):
        # Serve every day, all day: a newcomer tries the demo whenever they like.
        session.add(
            CanteenSettings(
                school_id=school.id,
                prices_by_band={"T1": 80, "T2": 180},
                open_weekdays="0123456",
                service_start=day_time(0, 0),
                service_end=day_time(23, 59, 59),
            )
        )
    till, till_token = add_device(
        session=session, school=school, kind=DeviceKind.TILL, name="Cantine (démo)"
    )
    office, office_token = add_device(
        session=session, school=school, kind=DeviceKind.TILL, name="Secrétariat (démo)"
    )
    session.commit()
    holders = _holders(session, school)
    assert till.id is not None
    assert office.id is not None
    return DemoTills(till.id, till_token, office.id, office_token, holders)


def _holders(session: Session, school: School) -> list[DemoHolder]:
    # The demo's virtual cards replace these pupils' cards (as an office would replace a
    # card): their account and history stay, and the tap page can present the new ones.
    pupils = list(
        session.exec(
            select(Pupil)
            .where(Pupil.school_id == school.id)
            .order_by(col(Pupil.allergies) == "", col(Pupil.id))
        ).all()
    )
    holders = []
    for i, pupil in enumerate(pupils[: SECURE_CARDS + UID_CARDS]):
        secure = i < SECURE_CARDS
        uid = _uid(i, secure)
        card = cards.issue_card(
            session=session, pupil=pupil, uid=uid, kind=CardKind.NTAG424 if secure else CardKind.UID
        )
        if secure:
            card.last_sun_counter = SEEN_COUNTER
            session.add(card)
        _top_up(session, school, pupil)
        kind = "NTAG 424 DNA" if secure else "UID"
        holders.append(
            DemoHolder(
                f"card-{i}",
                f"{pupil.full_name} — {kind}",
                uid,
                secure,
                counter=SEEN_COUNTER if secure else 0,
            )
        )
    first, last = holders[0], pupils[SECURE_CARDS + UID_CARDS]
    holders.append(
        DemoHolder(
            "copy",
            f"{first.label.split(' — ')[0]} — copie",
            first.uid,
            True,
            note="a copy replaying an old SUN: refused, alert",
            counter=0,
        )
    )
    lost_uid = _uid(99, False)
    lost = cards.issue_card(session=session, pupil=last, uid=lost_uid, kind=CardKind.UID)
    cards.mark_lost(session=session, card=lost)
    cards.issue_card(session=session, pupil=last, uid=_uid(98, False), kind=CardKind.UID)
    holders.append(
        DemoHolder(
            "lost",
            f"{last.full_name} — carte perdue",
            lost_uid,
            False,
            note="a card reported lost: refused, alert",
        )
    )
    holders.append(
        DemoHolder(
            "stranger",
            "Carte inconnue",
            _uid(77, False),
            False,
            note="not issued here: enrol it from the office page",
        )
    )
    session.commit()
    return holders


def _top_up(session: Session, school: School, pupil: Pupil) -> None:
    assert school.id is not None
    account = pupil_account(session=session, pupil=pupil)
    if account.balance_cents > 0:
        return
    cash = school_account(session=session, school_id=school.id, kind=AccountKind.CASH_DRAWER)
    post(
        session=session,
        school_id=school.id,
        kind=TransactionKind.TOPUP,
        client_id=f"demo-topup-{uuid.uuid4()}",
        legs=[(account, TOP_UP_CENTS), (cash, -TOP_UP_CENTS)],
        memo="demo top-up",
    )
