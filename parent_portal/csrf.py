"""Anti-forgery tokens on every form POST, checked by one app-wide dependency.

Signed-in users get a synchronizer token kept on their server-side session; anonymous
forms (the login page) use a double-submit cookie whose value the form repeats.
"""

from __future__ import annotations

import re

from fastapi import Request
from starlette.responses import Response

from parent_portal.deps import UNSAFE_METHODS, get_settings, signed_in_for
from parent_portal.errors import CsrfRejected
from school.security import new_token, tokens_equal

CSRF_FIELD = "csrf_token"
CSRF_COOKIE = "moulin_csrf"
API_PREFIX = "/api/"
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


async def csrf_protect(request: Request) -> None:
    """Refuse an unsafe request whose form does not carry the expected token.

    Installed as a dependency of the whole application, so a new form route is covered
    without anyone remembering to add it. Safe methods pass untouched."""
    if request.method not in UNSAFE_METHODS:
        return
    if request.scope["path"].startswith(API_PREFIX):  # not request.url: built for this
        # The API is for devices and programs, which authenticate every request with
        # their own token (or a payment provider's signature), never with the browser's
        # cookie: there is no ambient credential there to forge a request with.
        return
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    signed_in = signed_in_for(request)
    if signed_in is not None:
        expected = signed_in.web_session.csrf_token
    else:
        expected = request.cookies.get(CSRF_COOKIE, "")
    if not isinstance(sent, str) or not sent or not expected or not tokens_equal(sent, expected):
        raise CsrfRejected("missing or wrong anti-forgery token")


def anonymous_token(request: Request) -> str:
    """The double-submit value for an anonymous form: the browser's existing one, so
    that two open login tabs both work, or a fresh one."""
    current = request.cookies.get(CSRF_COOKIE, "")
    return current if _TOKEN_SHAPE.match(current) else new_token()


def set_anonymous_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE, token, httponly=True, samesite="strict",
        secure=get_settings(request).https, path="/",
    )
