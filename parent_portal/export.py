"""Everything Moulin holds about a signed-in parent and their children, for their right
of access (GDPR art. 15): one dictionary, downloaded as JSON and shown as a page.

In it: the user (never the password hash or session tokens), their staff roles, their
guardianships, each child (parent_portal.export_children), their online payments, the
e-mails sent to them, their sessions and failed sign-ins, the camera consents recorded
for them, their own camera viewing log, and their own actions in the audit log (what and
when, not the details, which may concern others). Not in it: anything about another
family, a co-guardian's contact details or other children, staff beyond the name of who
did something. Times are in the school's zone, amounts in cents and as written.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from cardpay.account_models import OutboxEmail, TopUpIntent
from parent_portal.export_children import Out, child, children_of, names
from school.models import (
    AuditEvent,
    Classroom,
    Guardianship,
    LoginFailure,
    Pupil,
    RoleGrant,
    School,
    User,
    WebSession,
)
from webcam.models import Camera, CameraConsent, CameraView

FORMAT = "moulin.family-export"
VERSION = 1
NOT_INCLUDED = ("other_families", "co_guardian_contact", "staff_details", "secrets")


def build(session: Session, *, user: User, today: date, now: datetime, lang: str,
          default_zone: str, default_currency: str) -> dict[str, Any]:
    """The export of `user`'s family as of `now`."""
    assert user.id is not None
    children = children_of(session, user.id, today)
    school = session.get(School, children[0].school_id) if children else \
        session.exec(select(School).order_by(col(School.id))).first()
    out = Out(zone=school.timezone if school else default_zone, lang=lang,
              currency=school.currency if school else default_currency)
    return {
        "format": FORMAT, "version": VERSION, "generated_at": out.when(now),
        "timezone": out.zone, "currency": out.currency,
        "you": {"id": user.id, "email": user.email, "full_name": user.full_name,
                "locale": user.locale, "active": user.is_active,
                "created_at": out.when(user.created_at)},
        "staff_roles": _roles(session, user.id),
        "guardianships": _guardianships(session, user.id, today),
        "children": [child(session, p, user_id=user.id, today=today, out=out)
                     for p in children],
        "online_payments": _payments(session, user.id, out),
        "emails": _emails(session, user, out),
        "sessions": _sessions(session, user.id, out),
        "login_failures": [{"at": out.when(at), "ip": ip} for at, ip in session.exec(
            select(LoginFailure.at, LoginFailure.ip).where(LoginFailure.email == user.email)
            .order_by(col(LoginFailure.at))).all()],
        "camera_consents": _consents(session, user.id, out),
        "camera_views": _views(session, user.id, out),
        "activity": [{"at": out.when(e.at), "action": e.action, "target": e.target_type,
                      "ip": e.ip} for e in session.exec(
            select(AuditEvent).where(AuditEvent.actor_user_id == user.id)
            .order_by(col(AuditEvent.id))).all()],
        "not_included": list(NOT_INCLUDED),
    }


def _roles(session: Session, user_id: int) -> list[dict[str, Any]]:
    rows = session.exec(select(RoleGrant.role, School.name)
                        .join(School, col(School.id) == RoleGrant.school_id)
                        .where(RoleGrant.user_id == user_id)).all()
    return [{"school": school, "role": str(role)} for role, school in rows]


def _guardianships(session: Session, user_id: int, today: date) -> list[dict[str, Any]]:
    rows = session.exec(
        select(Guardianship, Pupil).join(Pupil, col(Pupil.id) == Guardianship.pupil_id)
        .where(Guardianship.user_id == user_id).order_by(col(Guardianship.starts_on))
    ).all()
    return [{"pupil": pupil.full_name, "relation": link.relation,
             "starts_on": link.starts_on.isoformat(),
             "ends_on": link.ends_on.isoformat() if link.ends_on else None,
             "active": link.active_on(today)} for link, pupil in rows]


def _payments(session: Session, user_id: int, out: Out) -> list[dict[str, Any]]:
    rows = session.exec(
        select(TopUpIntent, Pupil).join(Pupil, col(Pupil.id) == TopUpIntent.pupil_id)
        .where(TopUpIntent.user_id == user_id).order_by(col(TopUpIntent.id))
    ).all()
    return [{"pupil": pupil.full_name, **out.money("amount", intent.amount_cents),
             "provider": intent.provider, "status": intent.status.value,
             "created_at": out.when(intent.created_at), "paid_at": out.when(intent.paid_at)}
            for intent, pupil in rows]


def _emails(session: Session, user: User, out: Out) -> list[dict[str, Any]]:
    rows = session.exec(
        select(OutboxEmail).where(or_(col(OutboxEmail.user_id) == user.id,
                                      col(OutboxEmail.to_address) == user.email))
        .order_by(col(OutboxEmail.id))
    ).all()
    return [{"created_at": out.when(e.created_at), "sent_at": out.when(e.sent_at),
             "abandoned_at": out.when(e.abandoned_at), "subject": e.subject, "body": e.body}
            for e in rows]


def _sessions(session: Session, user_id: int, out: Out) -> list[dict[str, Any]]:
    rows = session.exec(select(WebSession).where(WebSession.user_id == user_id)
                        .order_by(col(WebSession.id))).all()
    return [{"created_at": out.when(s.created_at), "last_seen_at": out.when(s.last_seen_at),
             "expires_at": out.when(s.expires_at), "revoked_at": out.when(s.revoked_at),
             "ip": s.ip, "user_agent": s.user_agent} for s in rows]


def _consents(session: Session, user_id: int, out: Out) -> list[dict[str, Any]]:
    rows = session.exec(
        select(CameraConsent, Classroom.name)
        .join(Classroom, col(Classroom.id) == CameraConsent.classroom_id)
        .where(CameraConsent.user_id == user_id).order_by(col(CameraConsent.id))
    ).all()
    ids: set[int | None] = {c.recorded_by_user_id for c, _ in rows}
    people = names(session, ids | {c.withdrawn_by_user_id for c, _ in rows})
    return [{"classroom": room, "capacity": c.capacity, "document_ref": c.document_ref,
             "given_at": out.when(c.given_at), "recorded_by": people.get(c.recorded_by_user_id),
             "withdrawn_at": out.when(c.withdrawn_at),
             "withdrawn_by": people.get(c.withdrawn_by_user_id or 0)} for c, room in rows]


def _views(session: Session, user_id: int, out: Out) -> list[dict[str, Any]]:
    rows = session.exec(
        select(CameraView, Camera.name, Classroom.name)
        .join(Camera, col(Camera.id) == CameraView.camera_id)
        .join(Classroom, col(Classroom.id) == Camera.classroom_id)
        .where(CameraView.user_id == user_id).order_by(col(CameraView.started_at))
    ).all()
    return [{"camera": camera, "classroom": room, "started_at": out.when(v.started_at),
             "ended_at": out.when(v.ended_at), "end_reason": v.end_reason, "ip": v.ip,
             "user_agent": v.user_agent, "via": v.via} for v, camera, room in rows]
