"""A camera node: capture and streaming for a few cameras, in a process of its own.

For schools with many cameras. `moulin camera-node --cameras 1,2 --port N` authenticates
as a camera-node device, claims the cameras (the portal stops capturing them at its next
sync and from then on hands parents URLs for this node) and serves them with this app.

Authorisation without a database round trip: the portal signs each URL for the user and
the camera with the shared secret key (`webcam.tokens`), after checking the session and
the policy; the node checks the signature and expiry locally. While a stream runs, the
node re-checks the policy like the portal does (`webcam.monitor`): one batched database
read per camera and per 0.3 s while anyone watches, however many watch, so a pause, a
slot's end, a consent withdrawn or a guardianship ended stops the stream within a second.
Its live viewer counts are written back for the portal's 'on air' page.

Like the portal, a node in production serves images of children only encrypted: it
refuses to start with a public URL that is not https:// (the portal would hand that URL
to parents), and it sends the portal's security headers (`school.web_headers`), HSTS
included when its URL is https.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, Request
from sqlalchemy.engine import Engine
from starlette.responses import JSONResponse

from school.clock import Clock, utcnow
from school.logs import RequestIds
from school.metrics import metrics_endpoint
from school.web_headers import SecurityHeaders
from webcam.api import handle_webcam_error, runtime_of, stream_router
from webcam.errors import WebcamError
from webcam.metrics import CameraCollector
from webcam.monitor import SESSION_IDLE
from webcam.runtime import CameraRuntime, NodeRole, SourceOpener
from webcam.tokens import check_for_node
from webcam.viewing import Grant


class InsecureNode(WebcamError):
    """A production node whose public URL is not https://."""


def check_public_url(public_url: str, *, production: bool) -> None:
    """Refuse, in production, a URL browsers would reach this node at in clear text."""
    if production and not public_url.lower().startswith("https://"):
        raise InsecureNode(
            f"in production a camera node needs an https:// public URL, not {public_url!r}: "
            "put it behind an HTTPS proxy and give that address with --public-url")


def node_grant(request: Request, camera_id: int, t: str = "") -> Grant:
    """A stream request carrying a URL the portal signed for one user and this camera."""
    runtime = runtime_of(request)
    user_id, session_id = check_for_node(runtime.secret_key, t, camera_id=camera_id,
                                         now=runtime.clock())
    return Grant(user_id=user_id, session_id=session_id,
                 ip=request.client.host if request.client else None,
                 user_agent=request.headers.get("user-agent", ""), via="node")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime: CameraRuntime = app.state.cameras
    runtime.start()
    try:
        yield
    finally:
        runtime.close()


def create_node_app(
    *, engine: Engine, secret_key: str, node: NodeRole, clock: Clock = utcnow,
    open_source: SourceOpener | None = None, metrics_token: str = "",
    public_url: str = "", production: bool = False, session_idle: timedelta = SESSION_IDLE,
) -> FastAPI:
    """The node's app; `GET /metrics` (school.metrics) shows its cameras. Raises
    `InsecureNode` in production unless `public_url` is https://."""
    check_public_url(public_url, production=production)
    app = FastAPI(title="Moulin camera node", lifespan=_lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.cameras = CameraRuntime(
        engine=engine, secret_key=secret_key, clock=clock, open_source=open_source, node=node,
        sync_interval=1.0,
    )
    app.add_exception_handler(WebcamError, handle_webcam_error)
    app.include_router(stream_router(node_grant))
    app.add_middleware(SecurityHeaders, https=public_url.lower().startswith("https://"))
    app.add_middleware(RequestIds)
    app.add_route("/metrics", metrics_endpoint(
        metrics_token, lambda: [CameraCollector(app.state.cameras.service)]))

    @app.get("/healthz")
    def healthz(request: Request) -> JSONResponse:
        runtime: CameraRuntime = request.app.state.cameras
        return JSONResponse({"status": "ok", "cameras": sorted(runtime.service.camera_ids)})

    return app
