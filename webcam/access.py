"""The access policy's inputs, read from the database: viewers, room rules, viewing limits.

`webcam.policy.decide` is pure; this module is the one place that turns records into its
arguments. Consent is complete for a room when every active guardian of every pupil now
in the room, and every member of staff assigned to the room, has a consent on record
that has not been withdrawn. Staff with a viewing role see their own rooms: a teacher the
rooms they are assigned to, the office and the director every room of their school.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from school.models import (
    Classroom,
    ClassroomStaff,
    ClosedDay,
    Guardianship,
    Pupil,
    Role,
    RoleGrant,
    School,
    User,
    WebSession,
)
from webcam.models import BroadcastSlot, Camera, CameraConsent, CameraView, WebcamSettings
from webcam.policy import CameraRules, ChildInRoom, SignIn, Slot, Viewer, ViewingState

ROOM_WIDE_ROLES = frozenset({Role.OFFICE, Role.ADMIN})
# How long after it ended a view still reaches the running views' quota (`recent_views`):
# far more than the half second between two checks of a stream.
RECENT = timedelta(minutes=1)


def local_day(school: School, now: datetime) -> date:
    return now.astimezone(ZoneInfo(school.timezone)).date()


def day_start(timezone: str, now: datetime) -> datetime:
    """Midnight today in the school's zone: where the daily quota starts counting."""
    zone = ZoneInfo(timezone)
    return datetime.combine(now.astimezone(zone).date(), time(0), zone)


@dataclass(frozen=True)
class ViewSpan:
    """One row of the viewing log as the quota sees it."""

    view_id: int
    started_at: datetime
    ended_at: datetime | None  # None while open; a snapshot's ends a little ahead

    def watched(self, since: datetime, now: datetime) -> timedelta:
        span = min(self.ended_at or now, now) - max(self.started_at, since)
        return max(span, timedelta(0))


def sign_ins(
    session: Session, session_ids: Iterable[int], *, idle: timedelta
) -> dict[int, SignIn | None]:
    """The browser sessions that opened views, with their account's state, in one query;
    None for a session no longer on record."""
    ids = sorted(set(session_ids))
    found: dict[int, SignIn | None] = dict.fromkeys(ids)
    if not ids:
        return found
    rows = session.execute(
        sa_select(col(WebSession.id), col(WebSession.user_id), col(WebSession.revoked_at),
                  col(WebSession.expires_at), col(WebSession.last_seen_at), col(User.is_active))
        .join(User, col(User.id) == WebSession.user_id)
        .where(col(WebSession.id).in_(ids))
    )
    for session_id, user_id, revoked, expires, seen, active in rows:
        found[session_id] = SignIn(session_id=session_id, user_id=user_id,
                                   revoked=revoked is not None,
                                   ends_at=min(expires, seen + idle), account_active=active)
    return found


def recent_views(
    session: Session, user_ids: Iterable[int], *, school_id: int, now: datetime
) -> dict[int, tuple[ViewSpan, ...]]:
    """Each user's views in this school that are open, or ended within `RECENT`."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    found: dict[int, list[ViewSpan]] = defaultdict(list)
    for view_id, user_id, started, ended in session.exec(
        select(col(CameraView.id), col(CameraView.user_id), col(CameraView.started_at),
               col(CameraView.ended_at))
        .where(col(CameraView.user_id).in_(ids), CameraView.school_id == school_id,
               col(CameraView.started_at) >= now - timedelta(days=1),
               or_(col(CameraView.ended_at).is_(None), col(CameraView.ended_at) > now - RECENT))
    ):
        assert view_id is not None
        found[user_id].append(ViewSpan(view_id, started, ended))
    return {user_id: tuple(spans) for user_id, spans in found.items()}


def viewers_for(
    session: Session, user_ids: Iterable[int], *, school_id: int, classroom_id: int | None = None
) -> dict[int, Viewer]:
    """The policy's view of each user in one school, in a fixed number of queries.

    With `classroom_id`, only what matters for that room is read (a camera's re-checks)."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    roles: dict[int, set[Role]] = defaultdict(set)
    for user_id, role in session.exec(
        select(RoleGrant.user_id, RoleGrant.role).where(
            col(RoleGrant.user_id).in_(ids), RoleGrant.school_id == school_id
        )
    ):
        roles[user_id].add(Role(role))
    children = _children(session, ids, school_id, classroom_id)
    rooms = _staff_rooms(session, roles, school_id, classroom_id)
    viewers = {}
    for user_id in ids:
        held = set(roles[user_id])
        if children[user_id]:
            held.add(Role.PARENT)  # the policy judges the guardianship's dates
        viewers[user_id] = Viewer(
            user_id=user_id,
            roles=frozenset(held),
            children=tuple(children[user_id]),
            staff_rooms=frozenset(rooms[user_id]),
        )
    return viewers


def viewer_for(session: Session, user_id: int, *, school_id: int) -> Viewer:
    return viewers_for(session, [user_id], school_id=school_id)[user_id]


def _children(
    session: Session, ids: list[int], school_id: int, classroom_id: int | None
) -> dict[int, list[ChildInRoom]]:
    # Plain columns, not entities, in two queries: a busy room's monitor reads a thousand
    # of these rows several times a second.
    pupils_query = select(col(Pupil.id), col(Pupil.classroom_id), col(Pupil.left_on)).where(
        Pupil.school_id == school_id, col(Pupil.classroom_id).is_not(None),
        col(Pupil.id).in_(select(Guardianship.pupil_id).where(col(Guardianship.user_id).in_(ids))),
    )
    if classroom_id is not None:
        pupils_query = pupils_query.where(Pupil.classroom_id == classroom_id)
    pupils = {pid: (room, left) for pid, room, left in session.exec(pupils_query)}
    # Filtered on the user only: with a second IN list SQLite walks the (pupil, user)
    # index for every pair, a million probes for a thousand watchers.
    links = session.exec(
        select(col(Guardianship.user_id), col(Guardianship.pupil_id),
               col(Guardianship.starts_on), col(Guardianship.ends_on))
        .where(col(Guardianship.user_id).in_(ids))
    )
    found: dict[int, list[ChildInRoom]] = defaultdict(list)
    for user_id, pupil_id, starts, ends in links:
        if pupil_id not in pupils:
            continue
        room_id, left_on = pupils[pupil_id]
        assert room_id is not None
        found[user_id].append(ChildInRoom(pupil_id=pupil_id, classroom_id=room_id,
                                          guardianship_starts=starts, guardianship_ends=ends,
                                          left_on=left_on))
    return found


def _staff_rooms(
    session: Session, roles: dict[int, set[Role]], school_id: int, classroom_id: int | None
) -> dict[int, set[int]]:
    rooms: dict[int, set[int]] = defaultdict(set)
    wide = [u for u, held in roles.items() if held & ROOM_WIDE_ROLES]
    teachers = [u for u, held in roles.items() if Role.TEACHER in held and u not in wide]
    if wide:
        query = select(Classroom.id).where(Classroom.school_id == school_id)
        if classroom_id is not None:
            query = query.where(Classroom.id == classroom_id)
        all_rooms = {room for room in session.exec(query).all() if room is not None}
        for user_id in wide:
            rooms[user_id] = set(all_rooms)
    if teachers:
        query2 = (
            select(ClassroomStaff.user_id, ClassroomStaff.classroom_id)
            .join(Classroom, col(Classroom.id) == ClassroomStaff.classroom_id)
            .where(col(ClassroomStaff.user_id).in_(teachers), Classroom.school_id == school_id)
        )
        if classroom_id is not None:
            query2 = query2.where(ClassroomStaff.classroom_id == classroom_id)
        for user_id, room_id in session.exec(query2):
            rooms[user_id].add(room_id)
    return rooms


def _active_guardianship(day: date) -> ColumnElement[bool]:
    return and_(
        col(Guardianship.starts_on) <= day,
        or_(col(Guardianship.ends_on).is_(None), col(Guardianship.ends_on) > day),
    )


def _active_consent(now: datetime) -> ColumnElement[bool]:
    return and_(
        col(CameraConsent.given_at) <= now,
        or_(col(CameraConsent.withdrawn_at).is_(None), col(CameraConsent.withdrawn_at) > now),
    )


@dataclass(frozen=True)
class Required:
    """Someone whose consent a room needs, and their consent on record if any."""

    user: User
    capacity: str  # "guardian" or "staff"
    consent: CameraConsent | None


def required_consents(
    session: Session, classroom_id: int, *, day: date, now: datetime
) -> list[Required]:
    """Everyone whose consent the room needs today, guardians first, each with their
    active consent or None."""
    guardians = session.exec(
        select(User)
        .join(Guardianship, col(Guardianship.user_id) == User.id)
        .join(Pupil, col(Pupil.id) == Guardianship.pupil_id)
        .where(
            Pupil.classroom_id == classroom_id,
            or_(col(Pupil.left_on).is_(None), col(Pupil.left_on) > day),
            _active_guardianship(day),
        )
        .distinct()
        .order_by(User.full_name, User.email)
    ).all()
    staff = session.exec(
        select(User)
        .join(ClassroomStaff, col(ClassroomStaff.user_id) == User.id)
        .where(ClassroomStaff.classroom_id == classroom_id)
        .order_by(User.full_name, User.email)
    ).all()
    consents = {
        c.user_id: c
        for c in session.exec(
            select(CameraConsent).where(
                CameraConsent.classroom_id == classroom_id, _active_consent(now)
            )
        ).all()
    }
    people = [(u, "guardian") for u in guardians]
    people += [(u, "staff") for u in staff if u not in guardians]
    return [Required(u, capacity, consents.get(u.id or 0)) for u, capacity in people]


def consent_complete(session: Session, classroom_id: int, *, day: date, now: datetime) -> bool:
    """`required_consents` reduced to two counts: is anyone required left without consent?
    (Run for every watched camera several times a second, whatever the room's size.)"""

    def unconsented(user_id: Any) -> ColumnElement[bool]:
        return ~exists().where(col(CameraConsent.classroom_id) == classroom_id,
                               CameraConsent.user_id == user_id, _active_consent(now))

    guardians = session.exec(
        select(func.count()).select_from(Guardianship)
        .join(Pupil, col(Pupil.id) == Guardianship.pupil_id)
        .where(Pupil.classroom_id == classroom_id,
               or_(col(Pupil.left_on).is_(None), col(Pupil.left_on) > day),
               _active_guardianship(day), unconsented(Guardianship.user_id))
    ).one()
    staff = session.exec(
        select(func.count()).select_from(ClassroomStaff)
        .where(ClassroomStaff.classroom_id == classroom_id, unconsented(ClassroomStaff.user_id))
    ).one()
    return guardians == 0 and staff == 0


def slots_of(session: Session, classroom_id: int) -> Sequence[BroadcastSlot]:
    return session.exec(
        select(BroadcastSlot)
        .where(BroadcastSlot.classroom_id == classroom_id)
        .order_by(col(BroadcastSlot.weekday), col(BroadcastSlot.starts_at))
    ).all()


def rules_for(session: Session, camera: Camera, school: School, now: datetime) -> CameraRules:
    """The room's rules now: slots, the closed days around today, pause and consent."""
    assert camera.id is not None
    today = local_day(school, now)
    closed = session.exec(
        select(col(ClosedDay.day)).where(
            ClosedDay.school_id == school.id,
            col(ClosedDay.day) >= today - timedelta(days=1),
            col(ClosedDay.day) <= today + timedelta(days=1),
        )
    ).all()
    return CameraRules(
        camera_id=camera.id,
        classroom_id=camera.classroom_id,
        timezone=school.timezone,
        slots=tuple(
            Slot(s.weekday, s.starts_at, s.ends_at) for s in slots_of(session, camera.classroom_id)
        ),
        closed_days=frozenset(closed),
        paused=camera.paused,
        consent_complete=consent_complete(session, camera.classroom_id, day=today, now=now),
    )


def limits_of(session: Session, school_id: int) -> WebcamSettings:
    return session.get(WebcamSettings, school_id) or WebcamSettings(school_id=school_id)


def viewing_state(
    session: Session, *, user_id: int, school_id: int, timezone: str, now: datetime,
    started: datetime | None = None, settled_only: bool = False,
) -> ViewingState:
    """The user's limits: session length, daily quota, and the time already watched today
    in this school (every camera; open views count up to now). Read it before the new
    view is logged, and give the new view's start as `started`.

    `settled_only`: count only the views that have ended, naming them in `counted_views`;
    a running view's check adds the others as it sees them (`webcam.monitor.Check`)."""
    limits = limits_of(session, school_id)
    midnight = day_start(timezone, now)
    views = session.exec(
        select(col(CameraView.id), col(CameraView.started_at), col(CameraView.ended_at)).where(
            CameraView.user_id == user_id,
            CameraView.school_id == school_id,
            or_(col(CameraView.ended_at).is_(None), col(CameraView.ended_at) > midnight),
        )
    ).all()
    watched, counted = timedelta(0), set()
    for view_id, begin, end in views:
        assert view_id is not None
        if settled_only and (end is None or end > now):
            continue
        watched += ViewSpan(view_id, begin, end).watched(midnight, now)
        counted.add(view_id)
    return ViewingState(
        session_started=started,
        session_length=timedelta(minutes=limits.session_minutes),
        watched_earlier_today=watched,
        daily_quota=timedelta(minutes=limits.daily_quota_minutes),
        counted_views=frozenset(counted) if settled_only else frozenset(),
    )


def cameras_in(session: Session, classroom_ids: Iterable[int]) -> Sequence[Camera]:
    """The enabled cameras of these rooms, by room then name."""
    ids = sorted(set(classroom_ids))
    return session.exec(
        select(Camera)
        .where(col(Camera.classroom_id).in_(ids), col(Camera.enabled))
        .order_by(col(Camera.classroom_id), col(Camera.name))
    ).all()
