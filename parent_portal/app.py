"""The web application factory: settings, database, routes, CSRF and security headers."""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine

from cardpay import api as till_api
from cardpay.sun import Keyring
from cardpay.till import Till
from parent_portal import handlers
from parent_portal.csrf import csrf_protect
from parent_portal.headers import SecurityHeaders
from parent_portal.routes import auth, demo, enrol, health, parent, staff, till
from school.clock import Clock, utcnow
from school.db import make_engine
from school.settings import Settings

STATIC_DIR = Path(__file__).parent / "static"


def create_app(
    settings: Settings, engine: Engine | None = None, *, clock: Clock = utcnow
) -> FastAPI:
    """Build the portal. `clock` is settable so tests can move time (sessions, throttling)."""
    app = FastAPI(
        title="Moulin",
        # App-wide, so that every form route, present or future, checks the token.
        dependencies=[Depends(csrf_protect)],
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine if engine is not None else make_engine(
        settings.effective_database_url
    )
    app.state.clock = clock
    app.state.till = Till(engine=app.state.engine,
                          keyring=Keyring(settings.effective_card_master_key()), clock=clock)
    app.add_middleware(SecurityHeaders, https=settings.https)
    handlers.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (health, auth, parent, staff, till, enrol, demo):
        app.include_router(module.router)
    app.include_router(till_api.router)
    return app
