"""Who may watch which camera, when: one pure function, `decide`, over plain records.

The web app builds the records (from the database, the capture service's pause state and
the viewer's session) and calls `decide` when a stream opens and at least once a second
while it runs. Rules, in the order a refusal is reported:

0. A camera that staff have switched off (disabled) shows nothing to anyone (`CAMERA_OFF`).
1. Staff holding a viewing role see their own rooms at any time: slots, closed days,
   quotas and session length do not apply to them; consent and pause do (a room without
   complete consent broadcasts to no one, and a pause stops every stream).
2. Anyone else needs a child in the room: enrolled today and under an active guardianship
   (`NOT_GUARDIAN`, `NOT_ENROLLED`, `GUARDIANSHIP_ENDED` otherwise).
3. The room must have complete consent (`CONSENT_MISSING`), be open that day
   (`CLOSED_DAY`) and inside a weekly slot in the school's time zone (`OUTSIDE_HOURS`),
   and not be paused (`PAUSED`).
4. The viewer's daily quota (`QUOTA_EXHAUSTED`) and session length (`SESSION_EXPIRED`);
   staff have no quota, but their views end with the session length too.

A running view is judged by `decide_view`: first the browser session that opened it
(`SIGNED_OUT` once it is revoked, expired or idle, which logging out, a password change
and revoking sessions all do; `ACCOUNT_DISABLED` once the account is deactivated), then
`decide`. Every kind of stream (MJPEG, snapshot, any later one) asks through it.

Date bounds follow `school.models`: a start day is included, an end day is not.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from school.models import Role

VIEWING_STAFF_ROLES = frozenset({Role.TEACHER, Role.OFFICE, Role.ADMIN})


class Reason(enum.StrEnum):
    OK = "ok"
    CAMERA_OFF = "camera_off"
    NOT_GUARDIAN = "not_guardian"
    NOT_ENROLLED = "not_enrolled"
    GUARDIANSHIP_ENDED = "guardianship_ended"
    CONSENT_MISSING = "consent_missing"
    CLOSED_DAY = "closed_day"
    OUTSIDE_HOURS = "outside_hours"
    PAUSED = "paused"
    QUOTA_EXHAUSTED = "quota_exhausted"
    SESSION_EXPIRED = "session_expired"
    SIGNED_OUT = "signed_out"
    ACCOUNT_DISABLED = "account_disabled"
    SNAPSHOT_LIMIT = "snapshot_limit"


@dataclass(frozen=True)
class ChildInRoom:
    """One of the viewer's children, the room they are in and the guardianship's bounds."""

    pupil_id: int
    classroom_id: int
    guardianship_starts: date
    guardianship_ends: date | None = None  # first day without guardianship
    left_on: date | None = None  # first day the pupil is no longer enrolled

    def guardian_on(self, day: date) -> bool:
        ends = self.guardianship_ends
        return self.guardianship_starts <= day and (ends is None or day < ends)

    def enrolled_on(self, day: date) -> bool:
        return self.left_on is None or day < self.left_on


@dataclass(frozen=True)
class Viewer:
    user_id: int
    roles: frozenset[Role] = frozenset()
    children: tuple[ChildInRoom, ...] = ()
    staff_rooms: frozenset[int] = frozenset()  # classroom ids this member of staff works in


@dataclass(frozen=True)
class Slot:
    """A weekly broadcast slot in the school's local time: [start, end) on `weekday`."""

    weekday: int  # Monday is 0
    start: time
    end: time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError("weekday is 0 (Monday) to 6 (Sunday)")
        if not self.start < self.end:
            raise ValueError("a slot ends after it starts, on the same day")

    def covers(self, local: datetime) -> bool:
        return local.weekday() == self.weekday and self.start <= local.time() < self.end


@dataclass(frozen=True)
class CameraRules:
    camera_id: int
    classroom_id: int
    timezone: str = "Europe/Paris"
    slots: tuple[Slot, ...] = ()
    closed_days: frozenset[date] = frozenset()
    paused: bool = False
    consent_complete: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class ViewingState:
    """The viewer's session with this camera; `None` limits mean 'no limit'."""

    session_started: datetime | None = None  # UTC; None before the stream opens
    session_length: timedelta | None = None
    watched_earlier_today: timedelta = timedelta(0)  # not counting this session
    daily_quota: timedelta | None = None
    # The views `watched_earlier_today` holds (a running view adds the others it sees).
    counted_views: frozenset[int] = frozenset()

    def watched_now(self, now: datetime) -> timedelta:
        current = now - self.session_started if self.session_started else timedelta(0)
        return self.watched_earlier_today + max(current, timedelta(0))


@dataclass(frozen=True)
class SignIn:
    """The browser session that opened a view, as the database last said."""

    session_id: int
    user_id: int
    revoked: bool
    ends_at: datetime  # its absolute expiry or its idle timeout, whichever comes first
    account_active: bool


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: Reason

    @classmethod
    def refuse(cls, reason: Reason) -> Decision:
        return cls(False, reason)


ALLOWED = Decision(True, Reason.OK)


def decide(viewer: Viewer, camera: CameraRules, now: datetime, state: ViewingState) -> Decision:
    """May `viewer` watch `camera` at `now` (aware; UTC or any zone)?"""
    if now.tzinfo is None:
        raise ValueError("decide needs an aware datetime")
    if not camera.enabled:
        return Decision.refuse(Reason.CAMERA_OFF)
    if viewer.roles & VIEWING_STAFF_ROLES and camera.classroom_id in viewer.staff_rooms:
        refusal = _staff_refusal(camera) or _length_refusal(state, now)
        return Decision.refuse(refusal) if refusal else ALLOWED
    local = now.astimezone(ZoneInfo(camera.timezone))
    refusal = (
        _child_refusal(viewer, camera, local.date())
        or _room_refusal(camera, local)
        or _limit_refusal(state, now)
    )
    return Decision.refuse(refusal) if refusal else ALLOWED


def decide_view(
    sign_in: SignIn | None, viewer: Viewer, camera: CameraRules, now: datetime,
    state: ViewingState,
) -> Decision:
    """May the view `sign_in` opened go on? `None`: that session is no longer on record."""
    refusal = sign_in_refusal(sign_in, viewer.user_id, now)
    return Decision.refuse(refusal) if refusal else decide(viewer, camera, now, state)


def sign_in_refusal(sign_in: SignIn | None, user_id: int, now: datetime) -> Reason | None:
    if sign_in is not None and sign_in.user_id == user_id and not sign_in.account_active:
        return Reason.ACCOUNT_DISABLED
    if (sign_in is None or sign_in.user_id != user_id or sign_in.revoked
            or now >= sign_in.ends_at):
        return Reason.SIGNED_OUT
    return None


def _child_refusal(viewer: Viewer, camera: CameraRules, today: date) -> Reason | None:
    in_room = [c for c in viewer.children if c.classroom_id == camera.classroom_id]
    if Role.PARENT not in viewer.roles or not in_room:
        return Reason.NOT_GUARDIAN
    guarded = [c for c in in_room if c.guardian_on(today)]
    if not guarded:
        started = any(c.guardianship_starts <= today for c in in_room)
        return Reason.GUARDIANSHIP_ENDED if started else Reason.NOT_GUARDIAN
    if not any(c.enrolled_on(today) for c in guarded):
        return Reason.NOT_ENROLLED
    return None


def _staff_refusal(camera: CameraRules) -> Reason | None:
    if not camera.consent_complete:
        return Reason.CONSENT_MISSING
    if camera.paused:
        return Reason.PAUSED
    return None


def _room_refusal(camera: CameraRules, local: datetime) -> Reason | None:
    if not camera.consent_complete:
        return Reason.CONSENT_MISSING
    if local.date() in camera.closed_days:
        return Reason.CLOSED_DAY
    if not any(slot.covers(local) for slot in camera.slots):
        return Reason.OUTSIDE_HOURS
    if camera.paused:
        return Reason.PAUSED
    return None


def _limit_refusal(state: ViewingState, now: datetime) -> Reason | None:
    if state.daily_quota is not None and state.watched_now(now) >= state.daily_quota:
        return Reason.QUOTA_EXHAUSTED
    return _length_refusal(state, now)


def _length_refusal(state: ViewingState, now: datetime) -> Reason | None:
    started, length = state.session_started, state.session_length
    if started is not None and length is not None and now - started >= length:
        return Reason.SESSION_EXPIRED
    return None
