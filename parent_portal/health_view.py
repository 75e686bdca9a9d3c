"""What the staff health page shows of one school: its tills and camera nodes, each live
or not with when it was last heard from (with a till's queue and last sync as its daemon
reported them), and its cameras with their capture state and viewers.

A camera captured by this server is read live from the capture service; one a node owns,
from what that node last wrote (`webcam.heartbeat`). Times are shown in the school's zone.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, select

from cardpay.models import TillDisagreement
from hardware.cameras.base import CameraState
from school.device_reports import is_stale, live_devices
from school.models import Classroom, Device, DeviceKind, Pupil, School
from webcam.errors import UnknownCamera
from webcam.models import Camera
from webcam.runtime import CameraRuntime

TIME_FORMAT = "%d/%m/%Y %H:%M:%S"
DISAGREEMENT_DAYS = timedelta(days=60)
MAX_DISAGREEMENTS = 100


@dataclass(frozen=True)
class DeviceRow:
    id: int
    name: str
    seen: str  # last contact, local time; "" when never seen
    live: bool
    queue: int | None = None
    last_sync: str = ""


@dataclass(frozen=True)
class CameraRow:
    id: int
    name: str
    room: str
    served_by: str | None  # a node's name; None: this server; "" when nobody captures it
    state: str  # a CameraState value, or "disabled" / "unknown"
    viewers: int | None
    seen: str  # when that state was known, local time
    stale: bool  # the node that captures it has not reported for a while


@dataclass(frozen=True)
class DisagreementRow:
    """A tap on which a till and the server differed (`cardpay.disagreements`)."""

    read_at: str  # local time
    till: str
    pupil: str  # "" when the card was known to no pupil here
    till_accepted: bool
    server_reason: str  # the server's first verdict (a cardpay.rules.Reason value)
    kind: str  # what was done: a cardpay.models.Disagreement value
    amount_cents: int


@dataclass(frozen=True)
class SchoolHealth:
    school: School
    tills: list[DeviceRow]
    nodes: list[DeviceRow]
    cameras: list[CameraRow]
    disagreement_count: int = 0  # in the last DISAGREEMENT_DAYS
    # The rows themselves, for staff who handle money (names, amounts); None for others.
    disagreements: list[DisagreementRow] | None = None


def _local(at: datetime | None, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime(TIME_FORMAT) if at else ""


def school_health(session: Session, runtime: CameraRuntime, school: School,
                  now: datetime, *, with_money: bool = False) -> SchoolHealth:
    """The school's devices and cameras; with `with_money`, the taps its tills and the
    server disagreed on, named (for office and admin)."""
    assert school.id is not None
    zone = ZoneInfo(school.timezone)
    tills: list[DeviceRow] = []
    nodes: list[DeviceRow] = []
    for device, _ in live_devices(session, {school.id}):
        row = DeviceRow(device.id or 0, device.name, _local(device.last_seen_at, zone),
                        not is_stale(device.last_seen_at, now), device.reported_queue,
                        _local(device.reported_sync_at, zone))
        (tills if device.kind is DeviceKind.TILL else nodes).append(row)
    names = {row.id: row.name for row in nodes}
    cameras = [_camera_row(runtime, camera, room, names, zone, now)
               for camera, room in session.exec(
                   select(Camera, Classroom.name)
                   .join(Classroom, col(Classroom.id) == Camera.classroom_id)
                   .where(Camera.school_id == school.id)
                   .order_by(col(Classroom.name), col(Camera.name)))]
    count, rows = _disagreements(session, school.id, zone, now, with_rows=with_money)
    return SchoolHealth(school, tills, nodes, cameras, count, rows)


def _disagreements(session: Session, school_id: int, zone: ZoneInfo, now: datetime, *,
                   with_rows: bool) -> tuple[int, list[DisagreementRow] | None]:
    since = now - DISAGREEMENT_DAYS
    recent = (TillDisagreement.school_id == school_id, col(TillDisagreement.read_at) >= since)
    count = session.exec(select(func.count()).select_from(TillDisagreement).where(*recent)).one()
    if not with_rows:
        return count, None
    found = session.exec(
        select(TillDisagreement, Device.name, Pupil)
        .join(Device, col(Device.id) == TillDisagreement.device_id)
        .outerjoin(Pupil, col(Pupil.id) == TillDisagreement.pupil_id)
        .where(*recent)
        .order_by(col(TillDisagreement.read_at).desc())
        .limit(MAX_DISAGREEMENTS)
    ).all()
    return count, [
        DisagreementRow(_local(d.read_at, zone), till, pupil.full_name if pupil else "",
                        d.till_accepted, d.server_reason, d.kind.value, d.amount_cents)
        for d, till, pupil in found
    ]


def _camera_row(runtime: CameraRuntime, camera: Camera, room: str, nodes: dict[int, str],
                zone: ZoneInfo, now: datetime) -> CameraRow:
    assert camera.id is not None
    here = _served_here(runtime, camera.id)
    if here is not None:
        state, viewers = here
        return CameraRow(camera.id, camera.name, room, None, state.value, viewers,
                         _local(now, zone), stale=False)
    if not camera.enabled:
        return CameraRow(camera.id, camera.name, room, "", "disabled", None, "", stale=False)
    if camera.node_device_id is None:  # several server workers and no node: nobody
        return CameraRow(camera.id, camera.name, room, "", "unknown", None, "", stale=False)
    stale = is_stale(camera.capture_state_at, now)
    return CameraRow(
        camera.id, camera.name, room, nodes.get(camera.node_device_id, "?"),
        camera.capture_state or "unknown", None if stale else camera.live_viewers,
        _local(camera.capture_state_at, zone), stale,
    )


def _served_here(runtime: CameraRuntime, camera_id: int) -> tuple[CameraState, int] | None:
    if not runtime.serves(camera_id):
        return None
    try:
        return runtime.service.state(camera_id), runtime.viewers(camera_id) or 0
    except UnknownCamera:  # stopped meanwhile
        return None


def staff_schools_health(session: Session, runtime: CameraRuntime, school_ids: set[int],
                         now: datetime, money_school_ids: AbstractSet[int] = frozenset()
                         ) -> list[SchoolHealth]:
    schools = session.exec(select(School).where(col(School.id).in_(school_ids))
                           .order_by(col(School.name))).all()
    return [school_health(session, runtime, school, now,
                          with_money=school.id in money_school_ids) for school in schools]

