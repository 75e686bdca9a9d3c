"""The web application factory: settings, database, routes, CSRF and security headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine

from parent_portal import handlers
from parent_portal.csrf import csrf_protect
from parent_portal.headers import SecurityHeaders
from parent_portal.routes import auth, camera_rules, camera_staff, cameras, health, parent, staff
from school.clock import Clock, utcnow
from school.db import make_engine
from school.settings import Settings
from webcam.runtime import CameraRuntime, SourceOpener

STATIC_DIR = Path(__file__).parent / "static"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    cameras: CameraRuntime = app.state.cameras
    cameras.start()
    try:
        yield
    finally:
        cameras.close()


def create_app(
    settings: Settings, engine: Engine | None = None, *, clock: Clock = utcnow,
    open_source: SourceOpener | None = None,
) -> FastAPI:
    """Build the portal. `clock` is settable so tests can move time (sessions, throttling);
    `open_source` so they can tune how cameras are read.

    The cameras no camera node owns are captured in this process, from startup (or the
    first camera request when the server runs without lifespan events)."""
    app = FastAPI(
        title="Moulin",
        lifespan=_lifespan,
        # App-wide, so that every form route, present or future, checks the token.
        dependencies=[Depends(csrf_protect)],
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine if engine is not None else make_engine(
        settings.effective_database_url
    )
    app.state.clock = clock
    app.state.cameras = CameraRuntime(
        engine=app.state.engine, secret_key=settings.effective_secret_key(), clock=clock,
        open_source=open_source, capture=settings.capture_cameras,
    )
    app.add_middleware(SecurityHeaders, https=settings.https)
    handlers.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (health, auth, parent, staff, cameras, camera_staff, camera_rules):
        app.include_router(module.router)
    return app
