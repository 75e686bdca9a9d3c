"""Jinja2 page rendering with the translator, language and anti-forgery token filled in."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse

from parent_portal.deps import get_settings
from parent_portal.i18n import (
    LANG_COOKIE,
    LANG_PARAM,
    LANGUAGES,
    choose_language,
    requested_switch,
    translator,
)

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    # A misspelt variable should fail a test, not render as an empty string.
    undefined=StrictUndefined,
)
templates = Jinja2Templates(env=_env)
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


def language_of(request: Request) -> str:
    user = getattr(request.state, "user", None)
    return choose_language(
        request, user.locale if user is not None else None, get_settings(request).default_locale
    )


def _switch_url(request: Request, lang: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != LANG_PARAM]
    params.append((LANG_PARAM, lang))
    return f"{request.url.path}?{urlencode(params)}"


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render a page in the request's language; remember a `?lang=` switch in a cookie."""
    lang = language_of(request)
    signed_in = getattr(request.state, "signed_in", None)
    page: dict[str, Any] = {
        "t": translator(lang),
        "lang": lang,
        "switches": [(other, _switch_url(request, other)) for other in LANGUAGES
                     if other != lang],
        "user": signed_in.user if signed_in else None,
        "csrf_token": signed_in.web_session.csrf_token if signed_in else "",
        "nav_staff": False,
        "nav_parent": False,
        "nav_admin": False,
        **getattr(request.state, "nav", {}),
    }
    page.update(context or {})
    response = templates.TemplateResponse(
        request, name, page, status_code=status_code, headers=headers
    )
    if requested_switch(request):
        response.set_cookie(
            LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE, httponly=True, samesite="lax",
            secure=get_settings(request).https, path="/",
        )
    return response
