"""The page an invitation link opens: a new member of staff chooses their password."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import Session
from starlette.responses import Response

from parent_portal.csrf import anonymous_token, set_anonymous_cookie
from parent_portal.deps import ClockDep, SessionDep, SettingsDep, get_engine, signed_in_for
from parent_portal.i18n import translator
from parent_portal.routes.auth import client_ip
from parent_portal.templating import language_of, render
from school import invitations
from school.errors import InvalidInput
from school.models import User
from school.passwords import MIN_PASSWORD_LENGTH, WeakPassword
from school.security import hash_password

logger = logging.getLogger(__name__)
router = APIRouter()

FormText = Annotated[str, Form()]
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _page(request: Request, token: str, *, error: str = "", state: str = "form",
          status_code: int = 200) -> Response:
    context: dict[str, object] = {"token": token, "error": error, "state": state}
    anonymous = signed_in_for(request) is None
    if anonymous:
        context["csrf_token"] = anonymous_token(request)
    response = render(request, "welcome.html", context, status_code=status_code,
                      headers=NO_STORE)
    if anonymous:
        set_anonymous_cookie(request, response, str(context["csrf_token"]))
    return response


def _invited(request: Request, token: str, secret: str, clock: ClockDep) -> str | None:
    """The invited account's e-mail, or None for a forged, expired or used link. Checked
    in a read of its own, so that a form post hashes the password before its own
    transaction takes the write lock."""
    with Session(get_engine(request)) as read:
        try:
            invitation = invitations.check_token(read, secret=secret, token=token, now=clock())
        except InvalidInput:
            return None
        user = read.get(User, invitation.user_id)
        return user.email if user else None


@router.get("/welcome/{token}")
def welcome_form(request: Request, token: str, settings: SettingsDep,
                 clock: ClockDep) -> Response:
    if _invited(request, token, settings.effective_secret_key(), clock) is None:
        return _page(request, "", state="invalid", status_code=400)
    return _page(request, token)


@router.post("/welcome/{token}")
def choose_password(request: Request, token: str, session: SessionDep, settings: SettingsDep,
                    clock: ClockDep, password: FormText = "", confirm: FormText = "") -> Response:
    secret = settings.effective_secret_key()
    email = _invited(request, token, secret, clock)
    if email is None:
        return _page(request, "", state="invalid", status_code=400)
    t = translator(language_of(request))
    try:
        invitations.check_new_password(password, confirm, email=email)
    except WeakPassword as exc:
        logger.info("invitation password refused: %s", exc.reason)
        return _page(request, token, status_code=400,
                     error=t(f"password.error.{exc.reason}", min=MIN_PASSWORD_LENGTH))
    except InvalidInput:
        return _page(request, token, error=t("welcome.error.mismatch"), status_code=400)
    password_hash = hash_password(password)
    try:
        invitations.accept(session=session, secret=secret, token=token,
                           password_hash=password_hash, now=clock(), ip=client_ip(request))
    except invitations.InvitationInvalid:  # used in another tab meanwhile
        session.rollback()
        return _page(request, "", state="invalid", status_code=400)
    session.commit()
    return _page(request, "", state="done")
