"""Pages with a form for someone who is not signed in (forgotten password, reset link,
second sign-in step): the anti-forgery token is the double-submit cookie's, unless the
browser happens to be signed in, when it is the session's (see parent_portal.csrf)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from parent_portal.csrf import anonymous_token, set_anonymous_cookie
from parent_portal.deps import signed_in_for
from parent_portal.templating import render

# Pages that carry a one-time secret in their address or form stay out of caches.
NO_STORE = {"Cache-Control": "no-store"}


def render_form(request: Request, name: str, context: dict[str, Any], *,
                status_code: int = 200) -> Response:
    signed_in = signed_in_for(request)
    if signed_in is not None:
        return render(request, name, context, status_code=status_code, headers=NO_STORE)
    token = anonymous_token(request)
    response = render(request, name, {**context, "csrf_token": token},
                      status_code=status_code, headers=NO_STORE)
    set_anonymous_cookie(request, response, token)
    return response
