"""Who may use each route, for the access matrix (test_access_matrix.py).

Most routes classify themselves through their dependencies (`derived_rule`):

    get_staff_viewer (StaffViewer)      any staff role, for records of the user's schools
    get_viewer / get_current_user       any signed-in user, for their own children's records
    current_till (the till API)         a till's device token
    portal_grant (camera streams)       a signed stream URL on top of the session

When the route itself narrows that (an office-only form, the director's log), or has no
such dependency (public pages), say so in RULES below. When you add a route the matrix
cannot classify, or whose path names a record the matrix does not know, the matrix fails
and tells you to come here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext

from cardpay.api import current_till
from parent_portal.access import get_staff_viewer, get_viewer
from parent_portal.camera_links import portal_grant
from parent_portal.deps import get_current_user

PUBLIC = "public"  # anyone, signed in or not
SIGNED_IN = "signed_in"  # anyone signed in; each sees only their own
PARENT = "parent"  # the guardians of the records named
DEVICE = "device"  # a till's bearer token
STREAM = "stream"  # a camera stream URL signed for the viewer's session
TEACHER, CASHIER, OFFICE, ADMIN = "teacher", "cashier", "office", "admin"
STAFF = frozenset({TEACHER, CASHIER, OFFICE, ADMIN})
MONEY = frozenset({CASHIER, OFFICE, ADMIN})  # see parent_portal.money_access
OFFICE_ADMIN = frozenset({OFFICE, ADMIN})


@dataclass(frozen=True)
class Rule:
    """Who may use a route, and what they get with records of their own."""

    who: frozenset[str]
    # Teachers only for the records of their own rooms (cameras); other staff roles for
    # the whole school.
    teacher_rooms: bool = False
    # What a permitted caller gets from a GET with their own records; None where that
    # cannot be shown here (it needs a signed URL).
    ok: int | None = 200
    why: str = ""


def rule(*who: str | frozenset[str], **kwargs: Any) -> Rule:
    roles: set[str] = set()
    for item in who:
        roles |= {item} if isinstance(item, str) else set(item)
    return Rule(frozenset(roles), **kwargs)


# Routes whose dependencies do not tell the whole story.
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): rule(PUBLIC),
    ("GET", "/login"): rule(PUBLIC),
    ("POST", "/login"): rule(PUBLIC),
    ("POST", "/logout"): rule(PUBLIC, why="signs out whoever asks"),
    # Sign-in's second step, forgotten passwords and invitations: public pages that act
    # only on the half-finished sign-in or the single-use token they are given.
    ("GET", "/login/totp"): rule(PUBLIC, ok=303, why="without a pending sign-in: to /login"),
    ("POST", "/login/totp"): rule(PUBLIC, why="needs the pending sign-in's cookie"),
    ("GET", "/login/forgot"): rule(PUBLIC),
    ("GET", "/account/totp/qr.svg"): rule(SIGNED_IN, ok=404, why="only while setting up"),
    ("POST", "/login/forgot"): rule(PUBLIC),
    ("GET", "/login/reset/{token}"): rule(PUBLIC, ok=410, why="a made-up token"),
    ("POST", "/login/reset/{token}"): rule(PUBLIC),
    ("GET", "/welcome/{token}"): rule(PUBLIC, ok=400, why="a made-up token"),
    ("POST", "/welcome/{token}"): rule(PUBLIC),
    # Roles offered to an existing account: only its holder, signed in, with the link.
    ("GET", "/staff/offers/{token}"): rule(SIGNED_IN, ok=404, why="a made-up token"),
    ("POST", "/staff/offers/{token}"): rule(SIGNED_IN, why="a made-up token: 404"),
    ("GET", "/"): rule(SIGNED_IN, ok=303, why="redirects to the user's home page"),
    ("GET", "/parent"): rule(SIGNED_IN),
    ("GET", "/parent/cameras"): rule(SIGNED_IN),
    ("GET", "/parent/cameras/log"): rule(SIGNED_IN),
    ("GET", "/till"): rule(STAFF, why="lists the tills of the schools where one may work"),
    ("GET", "/demo/tap"): rule(STAFF, ok=404, why="exists only in `moulin demo`"),
    ("POST", "/demo/tap"): rule(STAFF, ok=404, why="exists only in `moulin demo`"),
    # What each role sees of a pupil (docs/accounts.md): teachers their own classes, the
    # office and admins the school; a cashier only on the till screen, at a tap.
    ("GET", "/photos/pupil/{pupil_id}"): rule(PARENT, OFFICE_ADMIN, TEACHER,
                                              teacher_rooms=True),
    ("GET", "/staff/classes/{classroom_id}"): rule(OFFICE_ADMIN, TEACHER, teacher_rooms=True),
    ("GET", "/cameras/{camera_id}/on-air"): rule(
        OFFICE_ADMIN, TEACHER, teacher_rooms=True,
        why="who may see a room's viewer count; or the room's screen with a node's token"),
    ("GET", "/cameras/{camera_id}/on-air/pair"): rule(PUBLIC, why="a wall screen's setup"),
    ("POST", "/cameras/{camera_id}/on-air/pair"): rule(
        PUBLIC, ok=404, why="needs a camera-node token of the camera's school (test_on_air)"),
    # Money: a pupil's account is for the office (a cashier sees a balance at a tap); the
    # day's takings are for cashiers too; meals by tariff band are not.
    ("GET", "/staff/pupils/{pupil_id}/money"): rule(OFFICE_ADMIN),
    ("GET", "/staff/pupils/{pupil_id}/statement"): rule(OFFICE_ADMIN),
    ("GET", "/staff/receipts/{receipt_id}"): rule(OFFICE_ADMIN),
    ("GET", "/staff/reports"): rule(MONEY),
    ("GET", "/staff/reports/meals"): rule(OFFICE_ADMIN),
    ("GET", "/staff/reports/day"): rule(MONEY),
    ("POST", "/staff/pupils/{pupil_id}/topup"): rule(OFFICE_ADMIN),
    ("POST", "/staff/pupils/{pupil_id}/refund"): rule(OFFICE_ADMIN),
    ("POST", "/staff/pupils/{pupil_id}/correction"): rule(OFFICE_ADMIN),
    ("POST", "/staff/pupils/{pupil_id}/transactions/{transaction_id}/reverse"):
        rule(OFFICE_ADMIN),
    # The tills and card enrolment.
    ("GET", "/till/{device_id}"): rule(MONEY),
    ("GET", "/till/{device_id}/events"): rule(MONEY),
    ("GET", "/staff/cards/enrol"): rule(OFFICE_ADMIN),
    ("POST", "/staff/cards/enrol"): rule(OFFICE_ADMIN),
    # Pupil records kept by the office.
    ("GET", "/staff/pupils/{pupil_id}/photo"): rule(OFFICE_ADMIN),
    ("POST", "/staff/pupils/{pupil_id}/photo"): rule(OFFICE_ADMIN),
    ("POST", "/staff/pupils/{pupil_id}/photo/delete"): rule(OFFICE_ADMIN),
    ("GET", "/staff/schools/{school_id}/pupils/import"): rule(OFFICE_ADMIN),
    ("POST", "/staff/schools/{school_id}/pupils/import"): rule(OFFICE_ADMIN),
    # Cameras: the office and the director manage them; teachers pause their own rooms.
    ("POST", "/staff/cameras"): rule(OFFICE_ADMIN),
    ("GET", "/staff/cameras/{camera_id}"): rule(OFFICE_ADMIN, TEACHER, teacher_rooms=True),
    ("POST", "/staff/cameras/{camera_id}"): rule(OFFICE_ADMIN),
    ("POST", "/staff/cameras/{camera_id}/pause"): rule(OFFICE_ADMIN, TEACHER,
                                                       teacher_rooms=True),
    ("POST", "/staff/cameras/{camera_id}/resume"): rule(OFFICE_ADMIN, TEACHER,
                                                        teacher_rooms=True),
    ("GET", "/staff/classes/{classroom_id}/schedule"): rule(OFFICE_ADMIN),
    ("POST", "/staff/classes/{classroom_id}/schedule"): rule(OFFICE_ADMIN),
    ("POST", "/staff/classes/{classroom_id}/schedule/{slot_id}/delete"): rule(OFFICE_ADMIN),
    ("GET", "/staff/classes/{classroom_id}/consents"): rule(OFFICE_ADMIN),
    ("POST", "/staff/classes/{classroom_id}/consents"): rule(OFFICE_ADMIN),
    ("POST", "/staff/classes/{classroom_id}/consents/{consent_id}/withdraw"):
        rule(OFFICE_ADMIN),
    ("GET", "/staff/schools/{school_id}/calendar"): rule(OFFICE_ADMIN),
    ("POST", "/staff/schools/{school_id}/calendar"): rule(OFFICE_ADMIN),
    ("POST", "/staff/schools/{school_id}/calendar/{day_id}/delete"): rule(OFFICE_ADMIN),
    ("POST", "/staff/schools/{school_id}/camera-limits"): rule(OFFICE_ADMIN),
    ("GET", "/staff/schools/{school_id}/camera-log"): rule(ADMIN, why="the director's"),
    # A pupil leaving, and the register of processing (it names hosts and folders).
    ("GET", "/staff/pupils/{pupil_id}/leave"): rule(OFFICE_ADMIN),
    ("POST", "/staff/pupils/{pupil_id}/leave"): rule(OFFICE_ADMIN),
    ("POST", "/staff/pupils/{pupil_id}/leave/settle"): rule(OFFICE_ADMIN),
    ("GET", "/staff/gdpr/register"): rule(OFFICE_ADMIN),
    # Administration: each school's admins only.
    ("GET", "/admin"): rule(ADMIN),
    ("GET", "/admin/schools/{school_id}/users"): rule(ADMIN),
    ("POST", "/admin/schools/{school_id}/users"): rule(ADMIN),
    ("POST", "/admin/schools/{school_id}/users/{user_id}/roles/grant"): rule(ADMIN),
    ("POST", "/admin/schools/{school_id}/users/{user_id}/roles/revoke"): rule(ADMIN),
    ("POST", "/admin/schools/{school_id}/users/{user_id}/deactivate"): rule(ADMIN),
    ("POST", "/admin/schools/{school_id}/users/{user_id}/activate"): rule(ADMIN),
    ("POST", "/admin/schools/{school_id}/users/{user_id}/invite"): rule(ADMIN),
    ("GET", "/admin/schools/{school_id}/devices"): rule(ADMIN),
    ("POST", "/admin/schools/{school_id}/devices"): rule(ADMIN),
    ("POST", "/admin/schools/{school_id}/devices/{device_id}/revoke"): rule(ADMIN),
    ("GET", "/admin/schools/{school_id}/settings"): rule(ADMIN),
    ("POST", "/admin/schools/{school_id}/settings"): rule(ADMIN),
    ("GET", "/admin/schools/{school_id}/audit"): rule(ADMIN),
}

# Mounted applications, which have no routes of their own to classify.
MOUNTS = {
    "/static": "public files",
    "/payments/webhook": "payment providers, authenticated by signature (test_payments)",
}

# What a parameter names, by its name: path parameters always, query and form parameters
# when they are integers. The matrix puts in records of the caller's own and of others.
# A path parameter that names no record (a reset token, a page name) maps to None.
PARAM_KINDS: dict[str, str | None] = {
    "pupil_id": "pupil", "pupil": "pupil", "card_id": "card", "receipt_id": "receipt",
    "transaction_id": "transaction", "intent_id": "intent", "classroom_id": "classroom",
    "camera_id": "camera", "slot_id": "slot", "consent_id": "consent",
    "school_id": "school", "school": "school", "day_id": "day", "device_id": "device",
    "device": "device", "user_id": "user",
    # Single-use tokens, and one's own sessions (another user's session gives 404:
    # test_sessions.py).
    "token": None, "session_id": None,
}

# Dependencies that say who a route is for.
MARKERS: list[tuple[Callable[..., Any], Rule]] = [
    (current_till, rule(DEVICE)),
    (portal_grant, rule(STREAM, ok=None)),
    (get_staff_viewer, rule(STAFF)),
    (get_viewer, rule(PARENT, SIGNED_IN)),
    (get_current_user, rule(PARENT, SIGNED_IN)),
]


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def derived_rule(route: RouteContext) -> Rule | None:
    """The rule the route's dependencies imply, the first marker found winning."""
    calls = set(_calls(route.dependant))
    for marker, found in MARKERS:
        if marker in calls:
            return found
    return None


def rule_for(method: str, route: RouteContext) -> tuple[Rule | None, str]:
    """The route's rule and where it came from ('RULES', 'dependencies' or '')."""
    if (method, route.path) in RULES:
        return RULES[(method, route.path)], "RULES"
    derived = derived_rule(route)
    return derived, "dependencies" if derived else ""
