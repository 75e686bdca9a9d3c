"""Sign-in and sign-out pages."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from parent_portal import pending, sessions, throttle
from parent_portal.csrf import anonymous_token, set_anonymous_cookie
from parent_portal.deps import ClockDep, SessionDep, SettingsDep, SignedInDep, get_engine
from parent_portal.device_cookie import device_key, set_device_cookie
from parent_portal.errors import LoginThrottled
from parent_portal.i18n import translator
from parent_portal.templating import language_of, render
from school import audit
from school.models import User
from school.people import get_user_by_email
from school.security import verify_password
from school.settings import Settings

logger = logging.getLogger(__name__)
router = APIRouter()

FormText = Annotated[str, Form()]


def safe_next(target: str) -> str:
    """Only a path on this site: an open redirect would make phishing links look like ours."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target:
        return target
    return "/"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _login_page(request: Request, *, next_url: str, email: str = "", error: str = "",
                status_code: int = 200) -> Response:
    token = anonymous_token(request)
    # ?done=reset after a password reset; only known values reach the page.
    done = request.query_params.get("done", "")
    response = render(request, "login.html", {
        "csrf_token": token, "next_url": safe_next(next_url), "email": email, "error": error,
        "done": done if done in ("reset",) else "",
    }, status_code=status_code)
    set_anonymous_cookie(request, response, token)
    return response


@router.get("/login")
def login_form(request: Request, signed_in: SignedInDep, next: str = "/") -> Response:
    if signed_in is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next_url=next)


@router.post("/login")
def login(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep,
    email: FormText = "", password: FormText = "", next: FormText = "/",
) -> Response:
    now, ip = clock(), client_ip(request)
    # Checked in a read of its own: the password hash takes tens of milliseconds, and the
    # request's own transaction holds SQLite's write lock, which tills are waiting for.
    with Session(get_engine(request), expire_on_commit=False) as read:
        user = get_user_by_email(read, email)
        # A browser this account has signed in with before is counted on its own
        # (parent_portal.device_cookie): guesses made elsewhere do not lock it out.
        device = device_key(request, settings, user.id if user else None)
        retry_at = throttle.locked_until(session=read, email=email, ip=ip, now=now,
                                         settings=settings, device=device)
    if retry_at is not None:
        # Refused before the password is looked at, so a locked account cannot be
        # probed by timing, and guessing costs the attacker nothing but time.
        audit.record(session, action="login.throttled", ip=ip)
        session.commit()
        raise LoginThrottled(retry_at)
    verified = verify_password(password, user.password_hash if user else None)
    user_id, active = (user.id, user.is_active) if user else (None, False)
    # End the read transaction before writing: the password check takes a fraction of a
    # second, and on SQLite a transaction that read before another one committed cannot
    # start writing ('database is locked' at once, whatever the busy timeout); every
    # statement from here on writes first.
    session.rollback()
    if user is None or not verified or not active:
        throttle.record_failure(session=session, email=email, ip=ip, now=now, device=device)
        audit.record(session, action="login.failure", actor_user_id=user_id,
                     ip=ip, known_account=user is not None)
        session.commit()
        logger.info("failed sign-in from %s", ip)
        t = translator(language_of(request))
        return _login_page(request, next_url=next, email=email, error=t("login.failed"),
                           status_code=401)
    if user.totp_enabled_at is not None:
        # The password is right; the session waits for the code (routes/login_totp.py).
        # Failures are not cleared yet, so wrong codes count with wrong passwords.
        token = pending.start(session=session, user=user, now=now, next_url=safe_next(next))
        audit.record(session, action="login.password_ok", actor_user_id=user_id, ip=ip)
        session.commit()
        response = RedirectResponse("/login/totp", status_code=303)
        pending.set_cookie(response, token, settings)
        return response
    return finish_sign_in(request, session=session, settings=settings, user=user, now=now,
                          email=email, next_url=next)


def finish_sign_in(request: Request, *, session: Session, settings: Settings, user: User,
                   now: datetime, email: str, next_url: str,
                   factor: str = "password") -> Response:
    """Open a session for a user who has proved who they are; commit and redirect."""
    ip = client_ip(request)
    throttle.clear_failures(session=session, email=email,
                            device=device_key(request, settings, user.id))
    # A cookie set before sign-in (perhaps planted by someone else) is never promoted.
    sessions.revoke_by_token(session=session, now=now,
                             token=request.cookies.get(sessions.SESSION_COOKIE, ""))
    _, token = sessions.start_session(
        session=session, user=user, now=now, settings=settings, ip=ip,
        user_agent=request.headers.get("user-agent", ""),
    )
    audit.record(session, action="login.success", actor_user_id=user.id, ip=ip, factor=factor)
    session.commit()
    response = RedirectResponse(safe_next(next_url), status_code=303)
    sessions.set_session_cookie(response, token, settings)
    assert user.id is not None
    set_device_cookie(response, settings, user.id)
    return response


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep,
    signed_in: SignedInDep,
) -> Response:
    if signed_in is not None:
        sessions.revoke(session=session, web_session=signed_in.web_session, now=clock())
        audit.record(session, action="logout", actor_user_id=signed_in.user.id,
                     ip=client_ip(request))
        session.commit()
    response = RedirectResponse("/login", status_code=303)
    sessions.clear_session_cookie(response, settings)
    return response
