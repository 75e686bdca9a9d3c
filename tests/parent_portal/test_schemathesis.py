"""Schemathesis walks every operation of the portal's OpenAPI description against the app
(in-process over ASGI, started and stopped like a server), once signed out, once as a
member of staff and once as a parent: no request, however malformed, may get a server
error (5xx).

The description comes from the app itself (`app.openapi()`), so routes added later are
walked too. Signed-in callers send their session cookie, and form operations get the
caller's real anti-forgery token, so the requests reach the routes rather than stopping at
the CSRF check; device API calls by staff carry a valid till token.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from sqlalchemy.engine import Engine
from sqlmodel import Session

from parent_portal.app import create_app
from parent_portal.csrf import CSRF_COOKIE, CSRF_FIELD
from parent_portal.sessions import SESSION_COOKIE, live_session
from school.models import Role, User
from school.security import new_token
from school.settings import Settings
from tests.conftest import FakeClock
from tests.parent_portal import world

MAX_EXAMPLES = 6
CONFIG = {
    "generation": {"max-examples": MAX_EXAMPLES},
    # A busy two-core box must not fail the walk for being slow to generate data.
    "suppress-health-check": ["too_slow"],
    # Coverage builds boundary and invalid inputs for each parameter; fuzzing adds random
    # ones. Stateful sequences are left to the functional tests.
    "phases": {"examples": {"enabled": False}, "stateful": {"enabled": False}},
    # A hung request fails the walk; 2 s failed answers that were only slow at load 20.
    "request-timeout": 10,
    "max-stream-events": 1,
}


@dataclass
class Caller:
    """Who sends the requests: their cookies and anti-forgery token, kept signed in."""

    kind: str
    app: FastAPI
    engine: Engine
    settings: Settings
    clock: FakeClock
    user_id: int | None
    cookies: dict[str, str]
    csrf: str
    till_token: str

    def refresh(self) -> None:
        """Sign in again if an operation signed this caller out (logout, revocation)."""
        if self.user_id is None:
            return
        with Session(self.engine, expire_on_commit=False) as session:
            live = live_session(session=session, token=self.cookies[SESSION_COOKIE],
                                now=self.clock(), settings=self.settings)
            if live is None:
                user = session.get(User, self.user_id)
                assert user is not None
                user.is_active = True
                session.add(user)
                self.cookies, self.csrf = world.session_cookie(session, user, self.settings,
                                                               self.clock())

    def prepare(self, case: Any) -> None:
        if isinstance(case.body, dict) and CSRF_FIELD in case.body:
            case.body[CSRF_FIELD] = self.csrf
        if case.path.startswith("/api/") and self.kind == "staff":
            headers = {k: v for k, v in (case.headers or {}).items()
                       if k.lower() != "authorization"}
            case.headers = {**headers, "Authorization": f"Bearer {self.till_token}"}


def described() -> dict[str, Any]:
    """The portal's OpenAPI description, from an app built only to describe itself."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(environment="test", data_dir=Path(tmp), secret_key="s" * 40,
                            card_master_key="00" * 16, database_url=f"sqlite:///{tmp}/d.db")
        app = create_app(settings)
        try:
            return app.openapi()
        finally:
            app.state.engine.dispose()


schema = schemathesis.openapi.from_dict(described(), config=SchemathesisConfig.from_dict(CONFIG))


@pytest.fixture(scope="module", params=["anonymous", "staff", "parent"])
def caller(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           _migrated_sqlite: Path) -> Iterator[Caller]:
    """A server on its own copy of the world, and who calls it; one per kind of caller,
    shared by every operation."""
    ground = world.standalone(tmp_path_factory.mktemp(f"walk-{request.param}"),
                              _migrated_sqlite)
    settings, engine, clock = ground.settings, ground.engine, ground.clock
    alpha = ground.world.campuses[0]
    user = {"anonymous": None, "staff": alpha.staff[Role.ADMIN],
            "parent": alpha.families[1].parent}[request.param]
    if user is None:
        token = new_token()
        cookies, csrf = {CSRF_COOKIE: token}, token
    else:
        with Session(engine, expire_on_commit=False) as session:
            cookies, csrf = world.session_cookie(session, user, settings, clock())
    app = create_app(settings, engine, clock=clock)
    try:
        yield Caller(request.param, app, engine, settings, clock, user.id if user else None,
                     cookies, csrf, alpha.till_token)
    finally:
        # Schemathesis ran the app's startup on its first request; run its shutdown.
        asgi.shutdown_lifespans()
        engine.dispose()


@schema.parametrize()
def test_no_request_gets_a_server_error(case: Any, caller: Caller) -> None:
    caller.refresh()
    caller.prepare(case)
    response = case.call(app=caller.app, cookies=caller.cookies, allow_redirects=False)
    case.validate_response(response, checks=[not_a_server_error])
