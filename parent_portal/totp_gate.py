"""`MOULIN_REQUIRE_TOTP_FOR_STAFF`: office and admin staff must sign in with a second
factor. One who has not set it up is sent to the enrolment page on every request until
done; only that page, signing out and the sign-in pages stay open.

Checked by an app-wide dependency, like CSRF, so that a page added later is covered too.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import Request
from sqlmodel import Session

from parent_portal.access import school_ids_with
from parent_portal.csrf import API_PREFIX
from parent_portal.deps import get_engine, get_settings, signed_in_for
from parent_portal.errors import TotpEnrolmentRequired
from school.models import Role, User
from school.settings import Settings

TOTP_ROLES = frozenset({Role.OFFICE, Role.ADMIN})
OPEN_PATHS = ("/account/totp", "/logout", "/login", "/healthz")


def must_enrol(session: Session, user: User, settings: Settings) -> bool:
    """Whether `user` must set up TOTP before doing anything else."""
    if not settings.require_totp_for_staff or user.totp_enabled_at is not None:
        return False
    assert user.id is not None
    return bool(school_ids_with(session, user.id, TOTP_ROLES))


def totp_required_for(session: Session, user: User, settings: Settings) -> bool:
    """Whether `user` may not turn TOTP off (the rule applies to them)."""
    assert user.id is not None
    return settings.require_totp_for_staff and bool(school_ids_with(session, user.id,
                                                                    TOTP_ROLES))


async def enrolment_gate(request: Request) -> None:
    """Refuse every page but the open ones to a user who must enrol first. The device
    API, the open pages and a server without the rule pass on the event loop, with no
    thread to wait for (a till's tap comes through here); the rest reads the database
    in a worker thread."""
    path = request.scope["path"]  # not request.url, which is built for this
    if path.startswith(API_PREFIX) or path.startswith(OPEN_PATHS):
        return
    if not get_settings(request).require_totp_for_staff:
        return
    await anyio.to_thread.run_sync(_check_enrolled, request)


def _check_enrolled(request: Request) -> None:
    settings = get_settings(request)
    signed_in = signed_in_for(request)
    if signed_in is None or signed_in.user.totp_enabled_at is not None:
        return
    with Session(get_engine(request)) as read:
        if must_enrol(read, signed_in.user, settings):
            raise TotpEnrolmentRequired("set up two-step verification first")
