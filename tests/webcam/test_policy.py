"""The access policy as a table: every guardian, room, time, pause, consent and custody case."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from school.models import Role
from webcam.policy import (
    CameraRules,
    ChildInRoom,
    Decision,
    Reason,
    SignIn,
    Slot,
    Viewer,
    ViewingState,
    decide,
    decide_view,
)

ROOM_A, ROOM_B = 1, 2
CLOSED = date(2026, 11, 17)  # a Tuesday the school is shut
SLOTS = tuple(
    Slot(day, start, end)
    for day in range(5)
    for start, end in ((time(8, 30), time(11, 30)), (time(13, 30), time(16, 30)))
)
CAMERA_A = CameraRules(
    camera_id=10,
    classroom_id=ROOM_A,
    slots=SLOTS,
    closed_days=frozenset({CLOSED}),
    consent_complete=True,
)
CAMERA_B = replace(CAMERA_A, camera_id=20, classroom_id=ROOM_B)

TIMES = {
    "inside": datetime(2026, 11, 24, 9, 0, tzinfo=UTC),  # Tuesday 10:00 in Paris
    "outside": datetime(2026, 11, 24, 17, 0, tzinfo=UTC),  # Tuesday 18:00
    "weekend": datetime(2026, 11, 28, 9, 0, tzinfo=UTC),  # Saturday 10:00
    "closed": datetime(2026, 11, 17, 9, 0, tzinfo=UTC),  # inside the slot, but a closed day
}


def parent(room: int, *, ended: bool = False) -> Viewer:
    child = ChildInRoom(
        pupil_id=100 + room,
        classroom_id=room,
        guardianship_starts=date(2025, 9, 1),
        guardianship_ends=date(2026, 1, 1) if ended else None,
    )
    return Viewer(user_id=room, roles=frozenset({Role.PARENT}), children=(child,))


NO_LIMITS = ViewingState()


def expected(guardian_of: int, ended: bool, camera: CameraRules, when: str) -> Reason:
    """The rules of `webcam.policy`, spelt out in the order refusals are reported."""
    if guardian_of != camera.classroom_id:
        return Reason.NOT_GUARDIAN
    if ended:
        return Reason.GUARDIANSHIP_ENDED
    if not camera.consent_complete:
        return Reason.CONSENT_MISSING
    if when == "closed":
        return Reason.CLOSED_DAY
    if when in ("outside", "weekend"):
        return Reason.OUTSIDE_HOURS
    if camera.paused:
        return Reason.PAUSED
    return Reason.OK


MATRIX = list(
    itertools.product(
        (ROOM_A, ROOM_B),  # the room the guardian's child is in
        (False, True),  # guardianship ended
        (CAMERA_A, CAMERA_B),
        TIMES,
        (False, True),  # paused
        (True, False),  # consent complete
    )
)


@pytest.mark.parametrize(("room", "ended", "camera", "when", "paused", "consent"), MATRIX)
def test_guardian_matrix(
    room: int, ended: bool, camera: CameraRules, when: str, paused: bool, consent: bool
) -> None:
    rules = replace(camera, paused=paused, consent_complete=consent)
    reason = expected(room, ended, rules, when)
    decision = decide(parent(room, ended=ended), rules, TIMES[when], NO_LIMITS)
    assert decision == Decision(reason is Reason.OK, reason)


def teacher(*rooms: int, role: Role = Role.TEACHER) -> Viewer:
    return Viewer(user_id=50, roles=frozenset({role}), staff_rooms=frozenset(rooms))


@pytest.mark.parametrize("when", TIMES)
def test_staff_see_their_own_rooms_at_any_time(when: str) -> None:
    assert decide(teacher(ROOM_A), CAMERA_A, TIMES[when], NO_LIMITS).reason is Reason.OK


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        (replace(CAMERA_A, paused=True), Reason.PAUSED),
        (replace(CAMERA_A, consent_complete=False), Reason.CONSENT_MISSING),
    ],
)
def test_staff_obey_pause_and_consent(rules: CameraRules, reason: Reason) -> None:
    assert decide(teacher(ROOM_A), rules, TIMES["inside"], NO_LIMITS).reason is reason


@pytest.mark.parametrize(
    "viewer",
    [teacher(ROOM_B), teacher(ROOM_A, role=Role.CASHIER), teacher(ROOM_A, role=Role.PARENT)],
    ids=["other room", "cashier", "no staff role"],
)
def test_staff_without_the_room_or_the_role_are_refused(viewer: Viewer) -> None:
    assert decide(viewer, CAMERA_A, TIMES["inside"], NO_LIMITS).reason is Reason.NOT_GUARDIAN


def test_staff_have_no_quota_but_their_views_end_with_the_session_length() -> None:
    start = TIMES["inside"]
    state = ViewingState(daily_quota=timedelta(0), session_length=timedelta(minutes=10),
                         session_started=start)
    assert decide(teacher(ROOM_A), CAMERA_A, start + timedelta(minutes=9), state).allowed
    late = start + timedelta(minutes=10)
    assert decide(teacher(ROOM_A), CAMERA_A, late, state).reason is Reason.SESSION_EXPIRED


def sign_in(**change: object) -> SignIn:
    fields: dict[str, object] = {"session_id": 7, "user_id": ROOM_A, "revoked": False,
                                 "ends_at": TIMES["inside"] + timedelta(hours=1),
                                 "account_active": True}
    return SignIn(**{**fields, **change})  # type: ignore[arg-type]


@pytest.mark.parametrize(("signed", "reason"), [
    (sign_in(), Reason.OK),
    (None, Reason.SIGNED_OUT),  # the session is no longer on record
    (sign_in(revoked=True), Reason.SIGNED_OUT),  # logged out, revoked, password changed
    (sign_in(ends_at=TIMES["inside"]), Reason.SIGNED_OUT),  # expired or idle
    (sign_in(user_id=99), Reason.SIGNED_OUT),  # another user's session
    (sign_in(account_active=False, revoked=True), Reason.ACCOUNT_DISABLED),
], ids=["live", "gone", "revoked", "expired", "other user", "deactivated"])
def test_a_view_lasts_only_as_long_as_the_session_that_opened_it(
    signed: SignIn | None, reason: Reason
) -> None:
    for viewer in (parent(ROOM_A), replace(teacher(ROOM_A), user_id=ROOM_A)):
        assert decide_view(signed, viewer, CAMERA_A, TIMES["inside"], NO_LIMITS).reason is reason


def test_guardianship_bounds_include_the_start_and_exclude_the_end() -> None:
    child = ChildInRoom(
        1, ROOM_A, guardianship_starts=date(2026, 11, 24), guardianship_ends=date(2026, 11, 25)
    )
    viewer = Viewer(1, frozenset({Role.PARENT}), (child,))
    assert decide(viewer, CAMERA_A, TIMES["inside"], NO_LIMITS).allowed
    next_day = TIMES["inside"] + timedelta(days=1)
    assert decide(viewer, CAMERA_A, next_day, NO_LIMITS).reason is Reason.GUARDIANSHIP_ENDED


def test_a_guardianship_not_yet_started_is_no_guardianship() -> None:
    child = ChildInRoom(1, ROOM_A, guardianship_starts=date(2026, 12, 1))
    viewer = Viewer(1, frozenset({Role.PARENT}), (child,))
    assert decide(viewer, CAMERA_A, TIMES["inside"], NO_LIMITS).reason is Reason.NOT_GUARDIAN


def test_a_child_who_left_the_school_opens_no_camera() -> None:
    child = ChildInRoom(1, ROOM_A, date(2025, 9, 1), left_on=date(2026, 11, 24))
    viewer = Viewer(1, frozenset({Role.PARENT}), (child,))
    assert decide(viewer, CAMERA_A, TIMES["inside"], NO_LIMITS).reason is Reason.NOT_ENROLLED


def test_one_active_guardianship_among_ended_ones_is_enough() -> None:
    old = ChildInRoom(1, ROOM_A, date(2024, 9, 1), guardianship_ends=date(2025, 1, 1))
    sibling = ChildInRoom(2, ROOM_A, date(2025, 9, 1))
    viewer = Viewer(1, frozenset({Role.PARENT}), (old, sibling))
    assert decide(viewer, CAMERA_A, TIMES["inside"], NO_LIMITS).allowed


def test_children_without_the_parent_role_open_nothing() -> None:
    viewer = replace(parent(ROOM_A), roles=frozenset())
    assert decide(viewer, CAMERA_A, TIMES["inside"], NO_LIMITS).reason is Reason.NOT_GUARDIAN


@pytest.mark.parametrize(
    ("utc", "allowed"),
    [
        (datetime(2026, 11, 24, 7, 29, tzinfo=UTC), False),  # 08:29 in Paris, winter
        (datetime(2026, 11, 24, 7, 30, tzinfo=UTC), True),  # 08:30: a slot's start is in
        (datetime(2026, 11, 24, 10, 29, tzinfo=UTC), True),
        (datetime(2026, 11, 24, 10, 30, tzinfo=UTC), False),  # 11:30: its end is out
        (datetime(2026, 6, 16, 6, 45, tzinfo=UTC), True),  # 08:45 in Paris, summer time
        (datetime(2026, 11, 24, 6, 45, tzinfo=UTC), False),  # 07:45 in Paris, winter time
    ],
)
def test_slots_are_in_the_schools_time_zone(utc: datetime, allowed: bool) -> None:
    assert decide(parent(ROOM_A), CAMERA_A, utc, NO_LIMITS).allowed is allowed


def test_another_time_zone_moves_the_slots() -> None:
    montreal = replace(CAMERA_A, timezone="America/Montreal")
    at = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 09:00 in Montreal, 15:00 in Paris
    assert decide(parent(ROOM_A), montreal, at, NO_LIMITS).allowed
    assert decide(parent(ROOM_A), CAMERA_A, at, NO_LIMITS).allowed
    late = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # 11:00 Montreal, 17:00 Paris
    assert decide(parent(ROOM_A), montreal, late, NO_LIMITS).allowed
    assert not decide(parent(ROOM_A), CAMERA_A, late, NO_LIMITS).allowed


def test_session_length_then_a_click_to_go_on() -> None:
    start = TIMES["inside"]
    state = ViewingState(session_started=start, session_length=timedelta(minutes=5))
    assert decide(parent(ROOM_A), CAMERA_A, start + timedelta(minutes=4), state).allowed
    late = start + timedelta(minutes=5)
    assert decide(parent(ROOM_A), CAMERA_A, late, state).reason is Reason.SESSION_EXPIRED
    renewed = replace(state, session_started=late)
    assert decide(parent(ROOM_A), CAMERA_A, late, renewed).allowed


def test_daily_quota_counts_the_current_session() -> None:
    start = TIMES["inside"]
    state = ViewingState(
        session_started=start,
        watched_earlier_today=timedelta(minutes=25),
        daily_quota=timedelta(minutes=30),
    )
    assert decide(parent(ROOM_A), CAMERA_A, start + timedelta(minutes=4), state).allowed
    late = start + timedelta(minutes=5)
    assert decide(parent(ROOM_A), CAMERA_A, late, state).reason is Reason.QUOTA_EXHAUSTED


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide(parent(ROOM_A), CAMERA_A, datetime(2026, 11, 24, 9, 0), NO_LIMITS)


@pytest.mark.parametrize(
    ("weekday", "start", "end"), [(7, time(8), time(9)), (0, time(9), time(9))]
)
def test_bad_slots_are_refused(weekday: int, start: time, end: time) -> None:
    with pytest.raises(ValueError, match=r"weekday|ends after"):
        Slot(weekday, start, end)
