"""The audit log: one append-only row per thing someone did."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from school.models import AuditEvent


def record(
    session: Session,
    *,
    action: str,
    school_id: int | None = None,
    actor_user_id: int | None = None,
    actor_device_id: int | None = None,
    target_type: str = "",
    target_id: str | int = "",
    ip: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an audit event to the session; the caller's commit makes it durable with
    the change it describes, so neither exists without the other."""
    event = AuditEvent(
        action=action,
        school_id=school_id,
        actor_user_id=actor_user_id,
        actor_device_id=actor_device_id,
        target_type=target_type,
        target_id=str(target_id),
        ip=ip,
        detail=detail,
    )
    session.add(event)
    return event
