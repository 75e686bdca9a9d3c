"""Device cookies: a browser that has signed in to an account before is recognised, so
that guesses made elsewhere do not lock its owner out (OWASP, 'Slow Down Online Guessing
Attacks with Device Cookies').

The cookie holds the account's id, a random nonce and an HMAC of both under the server's
secret key; nothing is stored on the server. Failed sign-ins made with a valid cookie are
counted against that cookie alone (`LoginFailure.device`, a digest of the nonce), so a
known browser is locked out by its own failures only (parent_portal.throttle).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from starlette.responses import Response

from school.settings import Settings

DEVICE_COOKIE = "moulin_device"
MAX_AGE_SECONDS = 365 * 24 * 3600
_PURPOSE = b"moulin device cookie v1"


def _mac(secret: str, user_id: int, nonce: str) -> str:
    message = b"|".join([_PURPOSE, str(user_id).encode(), nonce.encode()])
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def issue(settings: Settings, user_id: int) -> str:
    nonce = secrets.token_urlsafe(18)
    return f"{user_id}.{nonce}.{_mac(settings.effective_secret_key(), user_id, nonce)}"


def device_key(request: Request, settings: Settings, user_id: int | None) -> str:
    """The key this browser's failures for `user_id` are counted under: the digest of its
    device cookie's nonce when it carries a valid cookie for that account, else ''."""
    parts = request.cookies.get(DEVICE_COOKIE, "").split(".")
    if user_id is None or len(parts) != 3 or parts[0] != str(user_id):
        return ""
    expected = _mac(settings.effective_secret_key(), user_id, parts[1])
    if not hmac.compare_digest(expected, parts[2]):
        return ""
    return "dev:" + hashlib.sha256(parts[1].encode()).hexdigest()[:40]


def set_device_cookie(response: Response, settings: Settings, user_id: int) -> None:
    """Give the browser a fresh cookie for the account that has just signed in."""
    response.set_cookie(DEVICE_COOKIE, issue(settings, user_id), max_age=MAX_AGE_SECONDS,
                        httponly=True, samesite="lax", secure=settings.https, path="/")
