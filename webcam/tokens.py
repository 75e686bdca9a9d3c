"""Short-lived signed stream URLs, so that no lasting credential ever sits in a page.

A page that shows a camera asks for a fresh URL each time it is rendered. The token in
its query is good for opening the stream for `TOKEN_TTL` seconds (a stream already open
is then governed by the access policy, checked every half second):

- portal streams: `t=<expiry>.<mac>`, the MAC (HMAC-SHA256, truncated to 128 bits) binding
  the camera id and the viewer's server-side session id, neither of which is in the token:
  the camera comes from the path, the session from the cookie. Another session, another
  camera or a signed-out browser gets 403.
- camera-node streams: `t=<user id>.<session id>.<expiry>.<mac>`, binding the camera, the
  user and the portal session that asked for it (a node cannot read the portal's
  cookie, which is not sent to another origin). A node holds the same secret key as the
  portal and checks the signature locally; it then checks, in the shared database, that
  this session is still live and its account active, when the stream opens and with
  every policy check while it runs (`webcam.monitor`): logging out at the portal ends
  the node's stream within a second. Whoever holds the URL may open it while it is good
  and the session is live; it can never outlive the session.

Each kind has its own key, derived from `MOULIN_SECRET_KEY`, so one cannot pass for the
other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from webcam.errors import WebcamError

TOKEN_TTL = 60  # seconds


class BadStreamToken(WebcamError):
    """Missing, malformed, forged, expired, or for another session or camera."""


def _mac(secret_key: str, purpose: str, message: str) -> str:
    key = hmac.new(secret_key.encode(), f"moulin/webcam/{purpose}/v1".encode(), hashlib.sha256)
    digest = hmac.new(key.digest(), message.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _expiry(now: datetime) -> int:
    return int(now.timestamp()) + TOKEN_TTL


def _check_expiry(raw: str, now: datetime) -> int:
    if not raw.isdigit():
        raise BadStreamToken("malformed stream token")
    expiry = int(raw)
    if not now.timestamp() <= expiry <= now.timestamp() + TOKEN_TTL + 5:
        raise BadStreamToken("stream token expired")
    return expiry


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def sign_for_session(secret_key: str, *, camera_id: int, session_id: int, now: datetime) -> str:
    expiry = _expiry(now)
    return f"{expiry}.{_mac(secret_key, 'portal', f'{camera_id}|{session_id}|{expiry}')}"


def check_for_session(
    secret_key: str, token: str, *, camera_id: int, session_id: int, now: datetime
) -> None:
    raw, _, mac = token.partition(".")
    expiry = _check_expiry(raw, now)
    if not _same(mac, _mac(secret_key, "portal", f"{camera_id}|{session_id}|{expiry}")):
        raise BadStreamToken("stream token not for this session or camera")


def sign_for_node(secret_key: str, *, camera_id: int, user_id: int, session_id: int,
                  now: datetime) -> str:
    expiry = _expiry(now)
    mac = _mac(secret_key, "node/2", f"{camera_id}|{user_id}|{session_id}|{expiry}")
    return f"{user_id}.{session_id}.{expiry}.{mac}"


def check_for_node(
    secret_key: str, token: str, *, camera_id: int, now: datetime
) -> tuple[int, int]:
    """The user and the portal session the token was signed for."""
    user, session, raw, mac = [*token.split("."), "", "", "", ""][:4]
    if not user.isdigit() or not session.isdigit() or token.count(".") != 3:
        raise BadStreamToken("malformed stream token")
    expiry = _check_expiry(raw, now)
    if not _same(mac, _mac(secret_key, "node/2", f"{camera_id}|{user}|{session}|{expiry}")):
        raise BadStreamToken("stream token not for this camera")
    return int(user), int(session)
