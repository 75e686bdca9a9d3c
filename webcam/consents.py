"""Recording and withdrawing consents to a room's broadcast.

The school keeps the signed paper; Moulin records that it exists (`document_ref`, where it
is filed), who recorded it and when, and when it was withdrawn. Only people whose
consent the room needs (`webcam.access.required_consents`) can have one recorded.
A withdrawal takes effect at once: open streams of the room end within a second.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session

from school import audit
from school.errors import Conflict, InvalidInput, NotFound
from school.models import Classroom
from webcam.access import required_consents
from webcam.models import CameraConsent


def record_consent(
    *, session: Session, classroom: Classroom, user_id: int, document_ref: str,
    actor_user_id: int, now: datetime, today: date, ip: str | None = None,
) -> CameraConsent:
    assert classroom.id is not None
    document_ref = document_ref.strip()
    if not document_ref:
        raise InvalidInput("say where the signed consent is filed")
    needed = {r.user.id: r for r in required_consents(session, classroom.id, day=today, now=now)}
    required = needed.get(user_id)
    if required is None:
        raise NotFound("this person's consent is not needed for this room")
    if required.consent is not None:
        raise Conflict("this person's consent is already recorded")
    consent = CameraConsent(
        classroom_id=classroom.id, user_id=user_id, capacity=required.capacity,
        document_ref=document_ref[:200], given_at=now, recorded_by_user_id=actor_user_id,
    )
    session.add(consent)
    session.flush()
    audit.record(session, action="camera.consent_record", school_id=classroom.school_id,
                 actor_user_id=actor_user_id, target_type="camera_consent",
                 target_id=consent.id or "", ip=ip, classroom_id=classroom.id,
                 user_id=user_id, capacity=required.capacity)
    return consent


def withdraw_consent(
    *, session: Session, consent: CameraConsent, school_id: int, actor_user_id: int,
    now: datetime, ip: str | None = None,
) -> None:
    if consent.withdrawn_at is not None:
        raise Conflict("this consent was already withdrawn")
    consent.withdrawn_at = now
    consent.withdrawn_by_user_id = actor_user_id
    session.add(consent)
    audit.record(session, action="camera.consent_withdraw", school_id=school_id,
                 actor_user_id=actor_user_id, target_type="camera_consent",
                 target_id=consent.id or "", ip=ip, classroom_id=consent.classroom_id,
                 user_id=consent.user_id)
