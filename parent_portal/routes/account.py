"""The signed-in user's own account: an overview, and changing the password (which ends
every other session of theirs and gives this one a fresh token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from parent_portal import credentials, sessions, throttle
from parent_portal.access import ViewerDep
from parent_portal.account_view import live_sessions_of, set_nav
from parent_portal.deps import (
    ClockDep,
    CurrentUser,
    SessionDep,
    SettingsDep,
    SignedInDep,
    get_engine,
)
from parent_portal.device_cookie import device_key
from parent_portal.errors import LoginThrottled
from parent_portal.i18n import translator
from parent_portal.routes.auth import client_ip
from parent_portal.templating import language_of, render
from school import audit, totp
from school.passwords import MIN_PASSWORD_LENGTH, WeakPassword
from school.security import verify_password

router = APIRouter()

FormText = Annotated[str, Form()]
DONE = ("password", "totp_on", "totp_off", "sessions")


@router.get("/account")
def account(request: Request, viewer: ViewerDep, session: SessionDep,
            settings: SettingsDep, clock: ClockDep) -> Response:
    done = request.query_params.get("done", "")
    return render(request, "account.html", {
        "totp_on": viewer.user.totp_enabled_at is not None,
        "codes_left": totp.recovery_codes_left(session, viewer.user_id),
        "session_count": len(live_sessions_of(session, viewer.user_id, now=clock(),
                                              settings=settings)),
        "done": done if done in DONE else "",
    })


def _password_page(request: Request, *, error: str = "", status_code: int = 200) -> Response:
    if not hasattr(request.state, "nav"):
        set_nav(request, request.state.user)
    return render(request, "account_password.html", {
        "error": error, "min_length": MIN_PASSWORD_LENGTH,
    }, status_code=status_code)


@router.get("/account/password")
def password_form(request: Request, viewer: ViewerDep) -> Response:
    return _password_page(request)


@router.post("/account/password")
def change_password(
    request: Request, user: CurrentUser, signed_in: SignedInDep, session: SessionDep,
    settings: SettingsDep, clock: ClockDep, current: FormText = "", password: FormText = "",
    confirm: FormText = "",
) -> Response:
    assert signed_in is not None
    now, ip = clock(), client_ip(request)
    t = translator(language_of(request))
    device = device_key(request, settings, user.id)
    # Everything slow or read-only happens before the request's transaction starts (see
    # routes/auth.py): the throttle, the password check, the new hash.
    with Session(get_engine(request)) as read:
        retry_at = throttle.locked_until(session=read, email=user.email, ip=ip, now=now,
                                         settings=settings, device=device)
    if retry_at is not None:
        raise LoginThrottled(retry_at)
    if not verify_password(current, user.password_hash):
        # Counted like a failed sign-in: a borrowed session must not become a way to
        # guess the password at leisure.
        throttle.record_failure(session=session, email=user.email, ip=ip, now=now,
                                device=device)
        audit.record(session, action="password.change_refused", actor_user_id=user.id, ip=ip)
        session.commit()
        return _password_page(request, error=t("password.error.current"), status_code=400)
    if password != confirm:
        return _password_page(request, error=t("password.error.mismatch"), status_code=400)
    try:
        password_hash = credentials.new_password_hash(password, email=user.email)
    except WeakPassword as exc:
        return _password_page(request, error=t(f"password.error.{exc.reason}",
                                               min=MIN_PASSWORD_LENGTH), status_code=400)
    assert user.id is not None
    credentials.set_password_hash(session=session, user=user, password_hash=password_hash,
                                  now=now)
    credentials.end_sessions(session=session, user_id=user.id, now=now,
                             keep_id=signed_in.web_session.id)
    _, token = credentials.rotate(session=session, web_session=signed_in.web_session,
                                  user=user, now=now, settings=settings, ip=ip,
                                  user_agent=request.headers.get("user-agent", ""))
    audit.record(session, action="password.change", actor_user_id=user.id,
                 target_type="user", target_id=user.id, ip=ip)
    session.commit()
    response = RedirectResponse("/account?done=password", status_code=303)
    sessions.set_session_cookie(response, token, settings)
    return response
