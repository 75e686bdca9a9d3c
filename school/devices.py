"""Devices (tills, camera nodes) and their tokens."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from school import audit
from school.models import Device, DeviceKind, School
from school.security import new_token, token_digest


def add_device(
    *,
    session: Session,
    school: School,
    kind: DeviceKind,
    name: str,
    actor_user_id: int | None = None,
    ip: str | None = None,
) -> tuple[Device, str]:
    """Create a device and return it with its token, which is not stored and cannot be
    shown again."""
    token = new_token()
    device = Device(
        school_id=school.id,  # type: ignore[arg-type]
        kind=kind,
        name=name,
        token_sha256=token_digest(token),
    )
    session.add(device)
    session.flush()
    audit.record(
        session,
        action="device.add",
        school_id=school.id,
        actor_user_id=actor_user_id,
        target_type="device",
        target_id=device.id or "",
        ip=ip,
        kind=kind.value,
        name=name,
    )
    return device, token


def device_for_token(session: Session, token: str) -> Device | None:
    """The live device holding this token, or None for an unknown or revoked one."""
    return session.exec(
        select(Device).where(
            Device.token_sha256 == token_digest(token), col(Device.revoked_at).is_(None)
        )
    ).first()


def revoke_device(
    *, session: Session, device: Device, now: datetime, actor_user_id: int | None = None,
    ip: str | None = None,
) -> None:
    device.revoked_at = now
    session.add(device)
    audit.record(
        session,
        action="device.revoke",
        school_id=device.school_id,
        actor_user_id=actor_user_id,
        target_type="device",
        target_id=device.id or "",
        ip=ip,
        kind=device.kind.value,
        name=device.name,
    )
