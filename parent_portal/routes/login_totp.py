"""The second sign-in step for users with TOTP: after the password, the six-digit code
from their app (or one of their recovery codes). No session exists until the code is
right; wrong codes count as failed sign-ins, so they are throttled like passwords."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from parent_portal import pending, throttle
from parent_portal.anonymous_forms import render_form
from parent_portal.deps import ClockDep, SessionDep, SettingsDep
from parent_portal.device_cookie import device_key
from parent_portal.errors import LoginThrottled
from parent_portal.i18n import translator
from parent_portal.routes.auth import client_ip, finish_sign_in
from parent_portal.templating import language_of
from school import audit, totp
from school.settings import Settings

router = APIRouter()

FormText = Annotated[str, Form()]


def _back_to_login(settings: Settings) -> Response:
    response = RedirectResponse("/login", status_code=303)
    pending.clear_cookie(response, settings)
    return response


@router.get("/login/totp")
def code_form(request: Request, session: SessionDep, settings: SettingsDep,
              clock: ClockDep) -> Response:
    token = request.cookies.get(pending.PENDING_COOKIE, "")
    if pending.find(session, token, clock()) is None:
        return _back_to_login(settings)
    return render_form(request, "login_totp.html", {"error": ""})


@router.post("/login/totp")
def check_code(request: Request, session: SessionDep, settings: SettingsDep,
               clock: ClockDep, code: FormText = "") -> Response:
    now, ip = clock(), client_ip(request)
    found = pending.find(session, request.cookies.get(pending.PENDING_COOKIE, ""), now)
    if found is None:
        return _back_to_login(settings)
    waiting, user = found
    device = device_key(request, settings, user.id)
    retry_at = throttle.locked_until(session=session, email=user.email, ip=ip, now=now,
                                     settings=settings, device=device)
    if retry_at is not None:
        audit.record(session, action="login.throttled", actor_user_id=user.id, ip=ip)
        session.commit()
        raise LoginThrottled(retry_at)
    assert user.id is not None
    if totp.looks_like_recovery_code(code):
        factor = "recovery_code"
        accepted = totp.use_recovery_code(session, user.id, code, now)
    else:
        factor = "totp"
        accepted = totp.use_code(session, user, code, now,
                                 secret_key=settings.effective_secret_key())
    if not accepted:
        throttle.record_failure(session=session, email=user.email, ip=ip, now=now,
                                device=device)
        audit.record(session, action="login.code_failure", actor_user_id=user.id, ip=ip,
                     factor=factor)
        session.commit()
        t = translator(language_of(request))
        return render_form(request, "login_totp.html", {"error": t("totp.login.failed")},
                           status_code=401)
    pending.end(session, waiting, now)
    response = finish_sign_in(request, session=session, settings=settings, user=user,
                              now=now, email=user.email, next_url=waiting.next_url,
                              factor=factor)
    pending.clear_cookie(response, settings)
    return response
