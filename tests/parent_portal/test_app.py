"""The application shell: health check, security headers, error pages."""

from __future__ import annotations

from pathlib import Path

import fastapi.routing
from sqlalchemy import create_engine

from parent_portal.app import create_app
from tests.conftest import FakeClock
from tests.parent_portal.conftest import TestClient


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_reports_an_unreachable_database(settings, tmp_path: Path) -> None:
    broken = create_engine(f"sqlite:///{tmp_path / 'missing-folder' / 'moulin.db'}")
    try:
        with TestClient(create_app(settings, broken)) as client:
            response = client.get("/healthz")
    finally:
        broken.dispose()
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def test_security_headers(client: TestClient) -> None:
    headers = client.get("/login").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "strict-transport-security" not in headers


def test_hsts_only_over_https(settings, engine, clock: FakeClock) -> None:
    app = create_app(settings.model_copy(update={"https": True}), engine, clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        assert client.get("/healthz").headers["strict-transport-security"].startswith("max-age=")


def test_pages_have_no_inline_script_or_style(client: TestClient) -> None:
    html = client.get("/login").text
    assert "<script" not in html
    assert "<style" not in html
    assert "style=" not in html


def test_stylesheet_is_served(client: TestClient) -> None:
    response = client.get("/static/moulin.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")


def test_unknown_page_is_an_html_404_for_browsers(client: TestClient) -> None:
    response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


def test_programs_get_json_errors(client: TestClient) -> None:
    response = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert "detail" in response.json()
    signed_out = client.get("/parent", headers={"Accept": "application/json"})
    assert signed_out.status_code == 401


def test_school_errors_map_to_status_codes() -> None:
    from parent_portal.errors import CsrfRejected, Forbidden, LoginThrottled, status_for
    from school.errors import Conflict, InvalidInput, NotFound

    assert status_for(NotFound()) == 404
    assert status_for(InvalidInput()) == 400
    assert status_for(Conflict()) == 409
    assert status_for(Forbidden()) == 403
    assert status_for(CsrfRejected()) == 403
    assert status_for(LoginThrottled(FakeClock()())) == 429


def test_start_up_does_the_first_requests_work(app, monkeypatch, small_school) -> None:  # type: ignore[no-untyped-def]
    """Routes are built and the till's writer is running before the first request, so
    the first tap after a restart does not wait a third of a second for them."""
    built: list[str] = []
    build = fastapi.routing.get_dependant

    def counted(**kwargs):  # type: ignore[no-untyped-def]
        built.append(kwargs["path"])
        return build(**kwargs)

    monkeypatch.setattr(fastapi.routing, "get_dependant", counted)
    with TestClient(app) as client:
        at_start = len(built)
        assert "/api/till/snapshot" in built  # the routers' routes are built lazily
        assert app.state.till.writer.running
        assert client.post("/api/till/taps", json={}).status_code == 401
        assert client.get("/login").status_code == 200
        assert client.get("/healthz").status_code == 200
    assert len(built) == at_start
