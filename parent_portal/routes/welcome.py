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


def _valid(request: Request, token: str, secret: str, clock: ClockDep) -> bool:
    """Checked in a read of its own, so that a form post hashes the password before its
    own transaction takes the write lock."""
    with Session(get_engine(request)) as read:
        try:
            invitations.check_token(read, secret=secret, token=token, now=clock())
        except InvalidInput:
            return False
    return True


@router.get("/welcome/{token}")
def welcome_form(request: Request, token: str, settings: SettingsDep,
                 clock: ClockDep) -> Response:
    if not _valid(request, token, settings.effective_secret_key(), clock):
        return _page(request, "", state="invalid", status_code=400)
    return _page(request, token)


@router.post("/welcome/{token}")
def choose_password(request: Request, token: str, session: SessionDep, settings: SettingsDep,
                    clock: ClockDep, password: FormText = "", confirm: FormText = "") -> Response:
    secret = settings.effective_secret_key()
    if not _valid(request, token, secret, clock):
        return _page(request, "", state="invalid", status_code=400)
    t = translator(language_of(request))
    try:
        invitations.check_new_password(password, confirm)
    except InvalidInput as exc:
        code = "mismatch" if password != confirm else "short"
        logger.info("invitation password refused: %s", exc)
        return _page(request, token, error=t(f"welcome.error.{code}"), status_code=400)
    password_hash = hash_password(password)
    try:
        invitations.accept(session=session, secret=secret, token=token,
                           password_hash=password_hash, now=clock(), ip=client_ip(request))
    except invitations.InvitationInvalid:  # used in another tab meanwhile
        session.rollback()
        return _page(request, "", state="invalid", status_code=400)
    session.commit()
    return _page(request, "", state="done")
