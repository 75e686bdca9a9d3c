"""What a till and the cashier's screen are told about a tap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session

from cardpay.canteen import first_meal_before
from cardpay.models import Tap
from cardpay.rules import Decision, Reason
from school.models import Classroom, Pupil, School


class TapFacts(Protocol):
    """What a verdict shows of a tap: a `Tap` row, or the till's record of one."""

    @property
    def tap_id(self) -> str: ...
    @property
    def accepted(self) -> bool: ...
    @property
    def price_cents(self) -> int: ...
    @property
    def balance_after_cents(self) -> int | None: ...
    @property
    def read_at(self) -> datetime: ...
    @property
    def decided_offline(self) -> bool: ...
    @property
    def repeat_of_id(self) -> int | None: ...
    @property
    def alert(self) -> str: ...


class PupilFacts(Protocol):
    """What a verdict shows of a pupil: a `Pupil`, or the till's row of one."""

    @property
    def id(self) -> int | None: ...
    @property
    def full_name(self) -> str: ...
    @property
    def photo_path(self) -> str | None: ...
    @property
    def allergies(self) -> str: ...
    @property
    def diet_notes(self) -> str: ...


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
        # Field by field, not `dataclasses.asdict`: its deep copy costs more than the rest
        # of the answer, on every tap.
        return dict(vars(self), read_at=self.read_at.isoformat(),
                    pupil=None if self.pupil is None else dict(vars(self.pupil)))


@dataclass(frozen=True)
class SchoolFacts:
    """What a verdict needs of its school, cheap to keep between taps."""

    currency: str
    locale: str
    timezone: str

    @classmethod
    def of(cls, school: School) -> SchoolFacts:
        return cls(currency=school.currency, locale=school.locale, timezone=school.timezone)


def make_verdict(
    tap: TapFacts, first: TapFacts, school: SchoolFacts, pupil: PupilFacts | None, room: str,
    decision: Decision,
) -> Verdict:
    """The verdict for `tap`, whose decision was made at `first` (itself, or the tap it
    repeats)."""
    return Verdict(
        tap_id=tap.tap_id,
        accepted=first.accepted,
        reason=decision.reason.value,
        message=decision.message(school.locale, school.timezone),
        price_cents=first.price_cents,
        balance_cents=first.balance_after_cents,
        currency=school.currency,
        pupil=_pupil_card(pupil, room),
        read_at=tap.read_at,
        decided_offline=first.decided_offline,
        repeat=tap.repeat_of_id is not None,
        alert=first.alert,
    )


def verdict_of(session: Session, tap: Tap) -> Verdict:
    """The verdict recorded for `tap`, read back (a retried tap); a repeat carries its
    first tap's verdict."""
    first = session.get(Tap, tap.repeat_of_id) if tap.repeat_of_id else tap
    assert first is not None
    school = session.get(School, tap.school_id)
    assert school is not None
    decision = Decision.recorded(first.accepted, first.reason)
    if decision.reason is Reason.ALREADY_EATEN:
        decision = Decision(
            accepted=False, reason=decision.reason, first_meal_at=first_meal_before(session, first)
        )
    pupil = session.get(Pupil, first.pupil_id) if first.pupil_id else None
    room = session.get(Classroom, pupil.classroom_id) if pupil and pupil.classroom_id else None
    return make_verdict(
        tap, first, SchoolFacts.of(school), pupil, room.name if room else "", decision
    )


def _pupil_card(pupil: PupilFacts | None, room: str) -> PupilCard | None:
    if pupil is None:
        return None
    assert pupil.id is not None
    return PupilCard(
        id=pupil.id,
        name=pupil.full_name,
        classroom=room,
        # Served by the portal (parent_portal.routes.photos) to the school's staff only,
        # so the cashier's screen shows it and a till's JSON never carries the image.
        photo_url=f"/photos/pupil/{pupil.id}" if pupil.photo_path else None,
        allergies=pupil.allergies,
        diet_notes=pupil.diet_notes,
    )
