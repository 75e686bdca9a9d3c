"""Managing cameras: who may, adding and editing them, masks, pause, limits, node claims.

The office and the director manage a school's cameras; a teacher may pause and resume the
cameras of their own rooms. Every change is written to the audit log in the same
transaction; the caller commits. A camera's address is never put in the audit log.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session, col, select

from hardware.cameras.opencv import parse_source
from hardware.errors import HardwareError
from school import audit
from school.errors import Conflict, InvalidInput, NotFound
from school.models import Classroom, ClassroomStaff, Device, DeviceKind, Role, RoleGrant
from webcam.models import Camera, WebcamSettings
from webcam.pipeline import Mask
from webcam.sealing import seal

MANAGING_ROLES = frozenset({Role.ADMIN, Role.OFFICE})
MAX_MASKS = 20
Polygons = list[list[list[float]]]


def school_roles(session: Session, user_id: int, school_id: int) -> set[Role]:
    rows = session.exec(
        select(RoleGrant.role).where(RoleGrant.user_id == user_id, RoleGrant.school_id == school_id)
    ).all()
    return {Role(r) for r in rows}


def can_manage(session: Session, user_id: int, school_id: int) -> bool:
    return bool(school_roles(session, user_id, school_id) & MANAGING_ROLES)


def can_pause(session: Session, user_id: int, camera: Camera) -> bool:
    roles = school_roles(session, user_id, camera.school_id)
    if roles & MANAGING_ROLES:
        return True
    assigned = session.exec(
        select(ClassroomStaff.id).where(
            ClassroomStaff.user_id == user_id, ClassroomStaff.classroom_id == camera.classroom_id
        )
    ).first()
    return Role.TEACHER in roles and assigned is not None


def viewer_counts_seen(session: Session, user_id: int, school_id: int) -> set[int]:
    """The cameras whose live viewer count the user may see: every camera of the school
    for the director and the office, a teacher's own rooms' cameras, none for anyone else
    (a cashier, a teacher of other rooms). A room's 'on air' screen shows its own."""
    roles = school_roles(session, user_id, school_id)
    query = select(Camera.id).where(Camera.school_id == school_id)
    if not roles & MANAGING_ROLES:
        if Role.TEACHER not in roles:
            return set()
        query = query.join(ClassroomStaff, col(ClassroomStaff.classroom_id) == Camera.classroom_id
                           ).where(ClassroomStaff.user_id == user_id)
    return {camera_id for camera_id in session.exec(query) if camera_id is not None}


def can_read_all_views(session: Session, user_id: int, school_id: int) -> bool:
    """The director (admin role) reads everyone's viewing log."""
    return Role.ADMIN in school_roles(session, user_id, school_id)


def check_source(source: str) -> str:
    source = source.strip()
    if not source:
        raise InvalidInput("a camera needs an address")
    try:
        parse_source(source)
    except HardwareError as exc:
        raise InvalidInput("not a camera address this server can read") from exc
    return source


_POINT = re.compile(r"^\s*([0-9.]+)\s*[,;]\s*([0-9.]+)\s*$")


def parse_masks(text: str) -> Polygons:
    """Polygons from text, one per line, points as `x,y` fractions separated by spaces:
    `0.1,0.1 0.4,0.1 0.4,0.3` blacks out a triangle near the top left."""
    polygons: Polygons = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        points = []
        for token in line.split():
            match = _POINT.match(token)
            if match is None:
                raise InvalidInput(f"mask line {number}: {token!r} is not a point x,y")
            points.append((float(match.group(1)), float(match.group(2))))
        try:
            Mask(tuple(points))
        except ValueError as exc:
            raise InvalidInput(f"mask line {number}: {exc}") from exc
        polygons.append([[x, y] for x, y in points])
    if len(polygons) > MAX_MASKS:
        raise InvalidInput(f"at most {MAX_MASKS} masks per camera")
    return polygons


def format_masks(polygons: Polygons) -> str:
    return "\n".join(" ".join(f"{x:g},{y:g}" for x, y in polygon) for polygon in polygons)


def add_camera(
    *, session: Session, classroom: Classroom, name: str, source: str, secret_key: str,
    actor_user_id: int, ip: str | None = None,
) -> Camera:
    name = name.strip()
    if not name:
        raise InvalidInput("a camera needs a name")
    if session.exec(select(Camera.id).where(Camera.school_id == classroom.school_id,
                                            Camera.name == name)).first() is not None:
        raise Conflict("a camera with that name already exists")
    camera = Camera(school_id=classroom.school_id, classroom_id=classroom.id,  # type: ignore[arg-type]
                    name=name, source_sealed=seal(check_source(source), secret_key))
    session.add(camera)
    session.flush()
    audit.record(session, action="camera.add", school_id=camera.school_id,
                 actor_user_id=actor_user_id, target_type="camera", target_id=camera.id or "",
                 ip=ip, name=name, classroom_id=classroom.id)
    return camera


def update_camera(
    *, session: Session, camera: Camera, name: str, enabled: bool, masks: Polygons,
    source: str, secret_key: str, release_node: bool, actor_user_id: int, ip: str | None = None,
) -> list[str]:
    """Apply the edit form; `source` empty keeps the address. Returns what changed."""
    changed: list[str] = []
    if name.strip() and name.strip() != camera.name:
        camera.name, changed = name.strip(), [*changed, "name"]
    if enabled != camera.enabled:
        camera.enabled, changed = enabled, [*changed, "enabled"]
    if masks != camera.masks:
        camera.masks, changed = masks, [*changed, "masks"]
    if source.strip():
        camera.source_sealed = seal(check_source(source), secret_key)
        changed.append("source")
    if release_node and camera.node_device_id is not None:
        camera.node_device_id, camera.node_url = None, None
        changed.append("node")
    if changed:
        session.add(camera)
        audit.record(session, action="camera.update", school_id=camera.school_id,
                     actor_user_id=actor_user_id, target_type="camera",
                     target_id=camera.id or "", ip=ip, changed=changed,
                     enabled=camera.enabled, masks=len(camera.masks))
    return changed


def set_paused(
    *, session: Session, camera: Camera, paused: bool, actor_user_id: int, now: datetime,
    ip: str | None = None,
) -> None:
    camera.paused = paused
    camera.paused_by_user_id = actor_user_id if paused else None
    camera.paused_at = now if paused else None
    session.add(camera)
    audit.record(session, action="camera.pause" if paused else "camera.resume",
                 school_id=camera.school_id, actor_user_id=actor_user_id,
                 target_type="camera", target_id=camera.id or "", ip=ip)


def save_limits(
    *, session: Session, school_id: int, session_minutes: int, daily_quota_minutes: int,
    actor_user_id: int, ip: str | None = None,
) -> WebcamSettings:
    if not 1 <= session_minutes <= 240 or not 1 <= daily_quota_minutes <= 24 * 60:
        raise InvalidInput("session length is 1 to 240 minutes, the quota 1 to 1440")
    limits = session.get(WebcamSettings, school_id) or WebcamSettings(school_id=school_id)
    limits.session_minutes, limits.daily_quota_minutes = session_minutes, daily_quota_minutes
    session.add(limits)
    audit.record(session, action="webcam.limits", school_id=school_id,
                 actor_user_id=actor_user_id, target_type="school", target_id=school_id, ip=ip,
                 session_minutes=session_minutes, daily_quota_minutes=daily_quota_minutes)
    return limits


def claim_for_node(
    *, session: Session, device: Device, camera_ids: list[int], node_url: str
) -> list[Camera]:
    """Hand cameras to a camera node, which from now on captures and streams them."""
    if device.kind is not DeviceKind.CAMERA_NODE or device.revoked_at is not None:
        raise InvalidInput("only a live camera-node device can own cameras")
    cameras = []
    for camera_id in camera_ids:
        camera = session.get(Camera, camera_id)
        if camera is None or camera.school_id != device.school_id:
            raise NotFound(f"no camera {camera_id} in this node's school")
        camera.node_device_id, camera.node_url = device.id, node_url.rstrip("/")
        session.add(camera)
        audit.record(session, action="camera.node_claim", school_id=camera.school_id,
                     actor_device_id=device.id, target_type="camera", target_id=camera_id,
                     node_url=camera.node_url)
        cameras.append(camera)
    return cameras
