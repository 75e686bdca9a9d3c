"""Exception handlers: errors become HTML pages for browsers and JSON for programs."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response

from cardpay.errors import CardPayError, TapError
from cardpay.payments.base import PaymentError
from parent_portal.csrf import API_PREFIX
from parent_portal.deps import get_clock, get_settings
from parent_portal.errors import (
    CsrfRejected,
    LoginRequired,
    LoginThrottled,
    PortalError,
    TotpEnrolmentRequired,
    status_for,
)
from parent_portal.i18n import translator
from parent_portal.sessions import SESSION_COOKIE, clear_session_cookie
from parent_portal.templating import language_of, render
from school.errors import SchoolError
from webcam.api import NO_STORE
from webcam.api import status_for as webcam_status
from webcam.errors import WebcamError

logger = logging.getLogger(__name__)

# Error pages show a message from the catalogs, never the exception's own text, which
# may name records the visitor should not learn about.
_MESSAGES = {400: "error.400", 403: "error.403", 404: "error.404", 405: "error.405",
             409: "error.409", 413: "error.413", 422: "error.400", 423: "error.423",
             429: "error.429", 502: "error.502"}


def wants_html(request: Request) -> bool:
    if request.url.path.startswith(API_PREFIX):
        return False
    accept = request.headers.get("accept", "*/*")
    return "text/html" in accept or "*/*" in accept


def _retry_message(request: Request, exc: LoginThrottled) -> tuple[str, dict[str, str]]:
    t = translator(language_of(request))
    now = get_clock(request)()
    minutes = max(1, math.ceil((exc.retry_at - now).total_seconds() / 60))
    local = exc.retry_at.astimezone(ZoneInfo(get_settings(request).default_timezone))
    message = t("error.429.detail", minutes=minutes, time=local.strftime("%H:%M"))
    seconds = max(1, math.ceil((exc.retry_at - now).total_seconds()))
    return message, {"Retry-After": str(seconds)}


def error_response(request: Request, status: int, message: str | None = None,
                   headers: Mapping[str, str] | None = None) -> Response:
    t = translator(language_of(request))
    text = message or t(_MESSAGES.get(status, "error.generic"))
    if not wants_html(request):
        return JSONResponse({"detail": text}, status_code=status, headers=headers)
    return render(request, "error.html", {"status": status, "message": text},
                  status_code=status, headers=headers)


async def handle_login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    if not wants_html(request):
        return JSONResponse({"detail": "sign-in required"}, status_code=401)
    response = RedirectResponse("/login?" + urlencode({"next": exc.next_url}), status_code=303)
    if SESSION_COOKIE in request.cookies:
        clear_session_cookie(response, get_settings(request))
    return response


async def handle_totp_enrolment(request: Request, exc: Exception) -> Response:
    if not wants_html(request):
        return JSONResponse({"detail": "two-step verification must be set up first"},
                            status_code=status_for(exc))
    return RedirectResponse("/account/totp", status_code=303)


async def handle_error(request: Request, exc: Exception) -> Response:
    """The one mapping of our errors, and the shared records' errors, to HTTP."""
    status = status_for(exc)
    if isinstance(exc, LoginThrottled):
        message, headers = _retry_message(request, exc)
        return error_response(request, status, message, headers)
    if isinstance(exc, CsrfRejected):
        logger.info("refused a form without a valid token on %s", request.url.path)
        return error_response(request, status, translator(language_of(request))("error.csrf"))
    if isinstance(exc, TapError):
        # Said to a till about its own request: the reason helps whoever installs it.
        return error_response(request, status, str(exc))
    return error_response(request, status)


async def handle_webcam_error(request: Request, exc: Exception) -> Response:
    """Camera refusals, with the status `webcam.api` chooses for each (see its table)."""
    assert isinstance(exc, WebcamError)
    return error_response(request, webcam_status(exc), headers=NO_STORE)


# PostgreSQL's codes for a value that does not fit its column: a number out of range, a
# text too long, a date out of range.
OUT_OF_RANGE_SQLSTATES = frozenset({"22001", "22003", "22008"})


async def handle_out_of_range(request: Request, exc: Exception) -> Response:
    """A value from the request that the database cannot hold (an id past 2^63 on SQLite,
    past 2^31 or a text longer than its column on PostgreSQL): the request is bad, and
    nothing was written. Any other database data error stays a server error."""
    if isinstance(exc, DataError):
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if state not in OUT_OF_RANGE_SQLSTATES:
            logger.error("database data error on %s", request.url.path, exc_info=exc)
            return error_response(request, 500)
    logger.info("refused a value out of range on %s: %s", request.url.path, exc)
    return error_response(request, 400)


def _shown(data: bytes) -> str:
    return data.decode("utf-8", "replace")


async def handle_invalid_request(request: Request, exc: Exception) -> Response:
    """FastAPI's own 422 and its shape, except that a body that is not text (a reader's
    garbage sent as text/plain or with no type) is shown with its undecodable bytes
    replaced: FastAPI's answer decoded them as UTF-8 and failed with a server error."""
    assert isinstance(exc, RequestValidationError)
    detail = jsonable_encoder(exc.errors(), custom_encoder={bytes: _shown})
    return JSONResponse({"detail": detail}, status_code=422)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(request, exc.status_code, headers=exc.headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(LoginRequired, handle_login_required)
    app.add_exception_handler(TotpEnrolmentRequired, handle_totp_enrolment)
    app.add_exception_handler(PortalError, handle_error)
    app.add_exception_handler(SchoolError, handle_error)
    app.add_exception_handler(CardPayError, handle_error)
    app.add_exception_handler(PaymentError, handle_error)
    app.add_exception_handler(WebcamError, handle_webcam_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(RequestValidationError, handle_invalid_request)
    app.add_exception_handler(OverflowError, handle_out_of_range)
    app.add_exception_handler(DataError, handle_out_of_range)
