"""Every form POST needs its anti-forgery token; without it nothing changes."""

from __future__ import annotations

from sqlmodel import Session, select

from parent_portal.csrf import CSRF_COOKIE
from parent_portal.sessions import SESSION_COOKIE
from school.models import WebSession
from tests.factories import PASSWORD, SmallSchool
from tests.parent_portal.conftest import TestClient, csrf_from, signed_in

EXPIRED_MESSAGE = "Ce formulaire a expiré ou ne provient pas de Moulin"


def test_logout_without_token_is_refused_and_the_session_stays(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    signed_in(client, "parent@example.org")
    response = client.post("/logout")
    assert response.status_code == 403
    assert EXPIRED_MESSAGE in response.text
    assert session.exec(select(WebSession)).one().revoked_at is None
    assert client.get("/parent").status_code == 200


def test_logout_with_a_wrong_token_is_refused(client: TestClient,
                                             small_school: SmallSchool) -> None:
    signed_in(client, "parent@example.org")
    assert client.post("/logout", data={"csrf_token": "x" * 43}).status_code == 403
    assert client.get("/parent").status_code == 200


def test_another_sessions_token_does_not_work(
    client: TestClient, app, small_school: SmallSchool
) -> None:
    with TestClient(app, follow_redirects=False) as attacker:
        signed_in(attacker, "other@example.org")
        their_token = csrf_from(attacker.get("/parent").text)
    signed_in(client, "parent@example.org")
    assert client.post("/logout", data={"csrf_token": their_token}).status_code == 403


def test_login_without_token_does_not_sign_in(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    response = client.post("/login", data={"email": "parent@example.org", "password": PASSWORD})
    assert response.status_code == 403
    assert EXPIRED_MESSAGE in response.text
    assert SESSION_COOKIE not in response.cookies
    assert session.exec(select(WebSession)).all() == []


def test_login_token_must_match_the_cookie(client: TestClient, small_school: SmallSchool) -> None:
    """A forged cross-site form cannot know the HttpOnly cookie's value."""
    client.get("/login")
    response = client.post("/login", data={
        "email": "parent@example.org", "password": PASSWORD, "csrf_token": "y" * 43,
    })
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.cookies


def test_login_token_without_its_cookie_is_refused(
    client: TestClient, small_school: SmallSchool
) -> None:
    token = csrf_from(client.get("/login").text)
    client.cookies.delete(CSRF_COOKIE)
    response = client.post("/login", data={
        "email": "parent@example.org", "password": PASSWORD, "csrf_token": token,
    })
    assert response.status_code == 403


def test_anonymous_cookie_flags(client: TestClient) -> None:
    cookie = client.get("/login").headers["set-cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie


def test_every_page_form_carries_the_token(client: TestClient, small_school: SmallSchool) -> None:
    signed_in(client, "admin@example.org")
    for path in ("/staff", f"/staff/classes/{small_school.rooms[0].id}"):
        html = client.get(path).text
        assert html.count("<form") == html.count('name="csrf_token"') >= 1


def test_a_route_added_later_is_guarded_without_asking(
    app, client: TestClient, small_school: SmallSchool
) -> None:
    """The guard sits on the application, so a new form route cannot forget it."""
    calls: list[str] = []

    @app.post("/added-later")
    def added_later() -> dict[str, str]:
        calls.append("ran")
        return {"ok": "yes"}

    signed_in(client, "parent@example.org")
    assert client.post("/added-later", data={"anything": "1"}).status_code == 403
    assert client.post("/added-later", json={"csrf_token": "nope"}).status_code == 403
    assert calls == []
    token = csrf_from(client.get("/parent").text)
    assert client.post("/added-later", data={"csrf_token": token}).status_code == 200
    assert calls == ["ran"]
