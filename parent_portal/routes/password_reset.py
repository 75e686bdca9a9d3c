"""'Forgot your password?': ask for a link by e-mail, then choose a new password with it.

The answer to a request is the same page whether or not the address has an account (and
the e-mail is sent after that answer), so the page cannot be used to find out who has
one. Requests are counted per e-mail and per address; past the per-e-mail count no more
e-mails go out, past the per-address count the page says to wait.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from parent_portal import credentials, rate_limit, reset_mail, sessions, throttle
from parent_portal.anonymous_forms import render_form
from parent_portal.deps import ClockDep, SessionDep, SettingsDep, get_engine
from parent_portal.i18n import translator
from parent_portal.routes.auth import client_ip
from parent_portal.templating import language_of
from school import audit, password_reset
from school.models import User
from school.passwords import MIN_PASSWORD_LENGTH, WeakPassword
from school.people import get_user_by_email
from school.settings import Settings

logger = logging.getLogger(__name__)
router = APIRouter()

FormText = Annotated[str, Form()]


def reset_limit(settings: Settings) -> rate_limit.Limit:
    return rate_limit.Limit(kind="password_reset",
                            per_key=settings.password_reset_max_per_email,
                            per_ip=settings.password_reset_max_per_ip,
                            window=timedelta(minutes=settings.password_reset_window_minutes))


def _forgot_page(request: Request, settings: Settings, *, sent: bool = False,
                 error: str = "", status_code: int = 200) -> Response:
    return render_form(request, "login_forgot.html", {
        "sent": sent, "error": error, "minutes": settings.password_reset_minutes,
        "can_send": reset_mail.smtp_of(request) is not None,
    }, status_code=status_code)


@router.get("/login/forgot")
def forgot_form(request: Request, settings: SettingsDep) -> Response:
    return _forgot_page(request, settings)


@router.post("/login/forgot")
def forgot(request: Request, session: SessionDep,
           settings: SettingsDep, clock: ClockDep, email: FormText = "") -> Response:
    now, ip, limit = clock(), client_ip(request), reset_limit(settings)
    if rate_limit.ip_exhausted(session, limit, ip=ip, now=now):
        audit.record(session, action="password_reset.throttled", ip=ip, by="ip")
        session.commit()
        t = translator(language_of(request))
        return _forgot_page(request, settings, error=t("reset.throttled"), status_code=429)
    if rate_limit.key_exhausted(session, limit, key=email, now=now):
        # Told to nobody: the usual answer, and no e-mail. Not counted, so that refused
        # requests do not keep the owner waiting longer.
        audit.record(session, action="password_reset.throttled", ip=ip, by="email")
        session.commit()
        return _forgot_page(request, settings, sent=True)
    rate_limit.record(session, limit, key=email, ip=ip, now=now)
    found = get_user_by_email(session, email)
    user = found if found is not None and found.is_active else None
    known = user is not None
    if reset_mail.smtp_of(request) is None or reset_mail.link_base(settings) is None:
        logger.warning("password reset asked for, but no SMTP server or public URL is set")
        sent = False
    else:
        # The same one row either way; the outbox worker mints the link as it sends.
        session.add(reset_mail.job(user=user, lang=language_of(request), now=now))
        sent = True
    audit.record(session, action="password_reset.request",
                 actor_user_id=user.id if user else None, ip=ip, known_account=known,
                 sent=sent and known)
    session.commit()
    outbox = getattr(request.app.state, "outbox", None)
    if sent and outbox is not None:
        outbox.wake()
    return _forgot_page(request, settings, sent=True)


def _reset_page(request: Request, token: str, *, error: str = "",
                status_code: int = 200) -> Response:
    return render_form(request, "login_reset.html", {
        "token": token, "error": error, "min_length": MIN_PASSWORD_LENGTH,
    }, status_code=status_code)


def _dead_link(request: Request) -> Response:
    return render_form(request, "login_reset_dead.html", {}, status_code=410)


@router.get("/login/reset/{token}")
def reset_form(request: Request, token: str, session: SessionDep,
               clock: ClockDep) -> Response:
    # Looked at, never spent: mail filters open links before people do.
    if password_reset.redeemable(session, token, clock()) is None:
        return _dead_link(request)
    return _reset_page(request, token)


@router.post("/login/reset/{token}")
def reset(request: Request, token: str, session: SessionDep, settings: SettingsDep,
          clock: ClockDep, password: FormText = "", confirm: FormText = "") -> Response:
    now, ip = clock(), client_ip(request)
    t = translator(language_of(request))
    # Read apart from the request's transaction, which then starts only after the hash.
    with Session(get_engine(request), expire_on_commit=False) as read:
        reset_row = password_reset.redeemable(read, token, now)
        user = read.get(User, reset_row.user_id) if reset_row else None
    if reset_row is None or user is None or not user.is_active:
        return _dead_link(request)
    if password != confirm:
        return _reset_page(request, token, error=t("password.error.mismatch"),
                           status_code=400)
    try:
        password_hash = credentials.new_password_hash(password, email=user.email)
    except WeakPassword as exc:
        return _reset_page(request, token, error=t(f"password.error.{exc.reason}",
                                                   min=MIN_PASSWORD_LENGTH), status_code=400)
    if not password_reset.redeem(session, reset_row, now):
        session.rollback()
        return _dead_link(request)
    assert user.id is not None
    credentials.set_password_hash(session=session, user=user, password_hash=password_hash,
                                  now=now)
    credentials.end_sessions(session=session, user_id=user.id, now=now)
    throttle.clear_failures(session=session, email=user.email)
    audit.record(session, action="password.reset", actor_user_id=user.id,
                 target_type="user", target_id=user.id, ip=ip, reset_id=reset_row.id)
    session.commit()
    response = RedirectResponse("/login?done=reset", status_code=303)
    sessions.clear_session_cookie(response, settings)
    return response
