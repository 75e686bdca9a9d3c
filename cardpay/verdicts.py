"""What a till and the cashier's screen are told about a tap."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from cardpay.canteen import first_meal_before
from cardpay.models import Tap
from cardpay.rules import Decision, Reason
from school.models import Classroom, Pupil, School


@dataclass(frozen=True)
class PupilCard:
    id: int
    name: str
    classroom: str
    photo_url: str | None
    allergies: str
    diet_notes: str


@dataclass(frozen=True)
class Verdict:
    tap_id: str
    accepted: bool
    reason: str
    message: str
    price_cents: int
    balance_cents: int | None
    currency: str
    pupil: PupilCard | None
    read_at: datetime
    decided_offline: bool
    repeat: bool
    alert: str

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["read_at"] = self.read_at.isoformat()
        return data


def verdict_of(session: Session, tap: Tap) -> Verdict:
    """The verdict recorded for `tap`; a repeat carries its first tap's verdict."""
    first = session.get(Tap, tap.repeat_of_id) if tap.repeat_of_id else tap
    assert first is not None
    school = session.get(School, tap.school_id)
    assert school is not None
    decision = Decision(accepted=first.accepted, reason=Reason(first.reason or "unknown_card"))
    return Verdict(
        tap_id=tap.tap_id,
        accepted=first.accepted,
        reason=decision.reason.value,
        message=_message(session, decision, first, school),
        price_cents=first.price_cents,
        balance_cents=first.balance_after_cents,
        currency=school.currency,
        pupil=_pupil_card(session, first.pupil_id),
        read_at=tap.read_at,
        decided_offline=first.decided_offline,
        repeat=tap.repeat_of_id is not None,
        alert=first.alert,
    )


def _message(session: Session, decision: Decision, tap: Tap, school: School) -> str:
    if decision.reason is Reason.ALREADY_EATEN and tap.pupil_id is not None:
        decision = Decision(
            accepted=False, reason=decision.reason, first_meal_at=first_meal_before(session, tap)
        )
    return decision.message(school.locale, school.timezone)


def _pupil_card(session: Session, pupil_id: int | None) -> PupilCard | None:
    if pupil_id is None:
        return None
    pupil = session.get(Pupil, pupil_id)
    assert pupil is not None
    assert pupil.id is not None
    room = session.get(Classroom, pupil.classroom_id) if pupil.classroom_id else None
    return PupilCard(
        id=pupil.id,
        name=pupil.full_name,
        classroom=room.name if room else "",
        photo_url=f"/pupils/{pupil.id}/photo" if pupil.photo_path else None,
        allergies=pupil.allergies,
        diet_notes=pupil.diet_notes,
    )
