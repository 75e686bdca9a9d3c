"""The portal's side of the camera streams: who asks (session and signed URL), and the
short-lived URLs pages put in their <img> tags.

A page gets a fresh URL each time it is rendered: a same-origin one bound to the
browser's session for a camera this server captures, or one signed for the user on the
node that owns the camera (see `webcam.tokens`). Pages that show a node's stream allow
that node's origin in their Content-Security-Policy's img-src, and nothing else.
"""

from __future__ import annotations

import logging
from typing import Annotated, cast
from urllib.parse import urlsplit

from fastapi import Depends, Request

from parent_portal.deps import ClockDep, SessionDep, SettingsDep, SignedIn, signed_in_for
from parent_portal.errors import Forbidden, LoginRequired
from parent_portal.headers import CONTENT_SECURITY_POLICY
from parent_portal.routes.auth import client_ip
from webcam.models import Camera
from webcam.runtime import CameraRuntime
from webcam.tokens import check_for_session, sign_for_node, sign_for_session
from webcam.viewing import Grant

logger = logging.getLogger(__name__)


def get_cameras(request: Request) -> CameraRuntime:
    return cast(CameraRuntime, request.app.state.cameras).start()


CamerasDep = Annotated[CameraRuntime, Depends(get_cameras)]


def portal_grant(
    request: Request, camera_id: int, session: SessionDep, clock: ClockDep,
    cameras: CamerasDep, settings: SettingsDep, t: str = "",
) -> Grant:
    """A stream request from a signed-in browser carrying a URL signed for its session.

    In production, images of children only travel encrypted: without `MOULIN_HTTPS`
    (the server behind an HTTPS proxy) streams are refused."""
    if settings.environment == "production" and not settings.https:
        raise Forbidden("camera streams need HTTPS in production")
    signed_in = signed_in_for(request)
    if signed_in is None:
        raise LoginRequired(request.url.path)
    assert signed_in.web_session.id is not None
    assert signed_in.user.id is not None
    grant = Grant(user_id=signed_in.user.id, session_id=signed_in.web_session.id,
                  ip=client_ip(request), user_agent=request.headers.get("user-agent", ""),
                  via="portal")
    session_id = signed_in.web_session.id
    # Hand the connection back now: the request's session would otherwise keep it for as
    # long as the stream runs, and a few dozen viewers would empty the pool.
    session.close()
    check_for_session(cameras.secret_key, t, camera_id=camera_id, session_id=session_id,
                      now=clock())
    return grant


def stream_url(request: Request, cameras: CameraRuntime, camera: Camera,
               kind: str = "stream.mjpg") -> str | None:
    """A fresh URL for this page's viewer to open `camera` (good for a minute); None in
    production for a node that is not reached over HTTPS."""
    # Set by the page's own sign-in dependency, which always runs first.
    signed_in = cast(SignedIn | None, getattr(request.state, "signed_in", None))
    assert signed_in is not None
    assert camera.id is not None
    now = request.app.state.clock()
    if camera.node_device_id is not None and camera.node_url:
        settings = request.app.state.settings
        if settings.environment == "production" and not camera.node_url.startswith("https://"):
            # A node claimed with a clear-text address (before production, or by hand):
            # images of children only travel encrypted, so no URL at all.
            logger.error("camera %s: its node's address is not https://; not shown", camera.id)
            return None
        assert signed_in.user.id is not None
        assert signed_in.web_session.id is not None
        token = sign_for_node(cameras.secret_key, camera_id=camera.id,
                              user_id=signed_in.user.id, session_id=signed_in.web_session.id,
                              now=now)
        return f"{camera.node_url}/cameras/{camera.id}/{kind}?t={token}"
    assert signed_in.web_session.id is not None
    token = sign_for_session(cameras.secret_key, camera_id=camera.id,
                             session_id=signed_in.web_session.id, now=now)
    return f"/cameras/{camera.id}/{kind}?t={token}"


def csp_for(cameras: list[Camera]) -> dict[str, str]:
    """Headers letting a page show images from the nodes of these cameras, if any."""
    origins = sorted({
        f"{parts.scheme}://{parts.netloc}"
        for parts in (urlsplit(c.node_url or "") for c in cameras if c.node_device_id)
        if parts.scheme in ("http", "https") and parts.netloc
    })
    if not origins:
        return {}
    return {"Content-Security-Policy":
            f"{CONTENT_SECURITY_POLICY}; img-src 'self' {' '.join(origins)}"}
