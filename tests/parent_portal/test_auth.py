"""Signing in and out, and the server-side session behind the cookie."""

from __future__ import annotations

from sqlmodel import Session, select

from parent_portal.sessions import SESSION_COOKIE
from school.models import AuditEvent, User, WebSession
from school.security import token_digest
from tests.conftest import FakeClock
from tests.factories import PASSWORD, SmallSchool
from tests.parent_portal.conftest import TestClient, csrf_from, login, signed_in


def audit_actions(session: Session) -> list[str]:
    session.rollback()
    return [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.id)).all()]


def test_parent_signs_in_and_lands_on_their_page(client: TestClient, small_school: SmallSchool,
                                                   session: Session) -> None:
    response = login(client, "parent@example.org")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    home = client.get("/", follow_redirects=True)
    assert home.url.path == "/parent"
    assert "Léa Martin" in home.text
    assert "login.success" in audit_actions(session)


def test_email_is_matched_case_insensitively(client: TestClient, small_school: SmallSchool) -> None:
    assert login(client, "  Parent@Example.ORG ").status_code == 303


def test_wrong_password_is_refused_clearly_and_opens_no_session(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    response = login(client, "parent@example.org", "not the password")
    assert response.status_code == 401
    assert "Adresse e-mail ou mot de passe incorrect." in response.text
    assert SESSION_COOKIE not in response.cookies
    assert session.exec(select(WebSession)).all() == []
    assert client.get("/parent").status_code == 303
    assert "login.failure" in audit_actions(session)
    # The password never reaches the audit log.
    events = session.exec(select(AuditEvent)).all()
    assert all("not the password" not in str(e.detail) for e in events)


def test_unknown_email_gets_the_same_answer(client: TestClient, small_school: SmallSchool) -> None:
    response = login(client, "nobody@example.org")
    assert response.status_code == 401
    assert "Adresse e-mail ou mot de passe incorrect." in response.text


def test_inactive_user_cannot_sign_in(client: TestClient, small_school: SmallSchool,
                                      session: Session) -> None:
    small_school.parent.is_active = False
    session.add(small_school.parent)
    session.commit()
    assert login(client, "parent@example.org").status_code == 401


def test_deactivating_a_user_ends_their_sessions(client: TestClient, small_school: SmallSchool,
                                                 session: Session) -> None:
    signed_in(client, "parent@example.org")
    user = session.get(User, small_school.parent.id)
    assert user is not None
    user.is_active = False
    session.commit()
    assert client.get("/parent").status_code == 303


def test_session_cookie_flags(client: TestClient, small_school: SmallSchool) -> None:
    cookie = login(client, "parent@example.org").headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_behind_https(settings, engine, clock: FakeClock,
                                               small_school: SmallSchool) -> None:
    from parent_portal.app import create_app

    app = create_app(settings.model_copy(update={"https": True}), engine, clock=clock)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        login_page = client.get("/login")
        assert "Secure" in login_page.headers["set-cookie"]
        assert "SameSite=strict" in login_page.headers["set-cookie"]
        cookie = login(client, "parent@example.org").headers["set-cookie"]
        assert "Secure" in cookie
        assert "HttpOnly" in cookie


def test_database_keeps_only_a_digest_of_the_token(client: TestClient, small_school: SmallSchool,
                                                   session: Session) -> None:
    login(client, "parent@example.org")
    token = client.cookies[SESSION_COOKIE]
    row = session.exec(select(WebSession)).one()
    assert row.token_sha256 == token_digest(token)
    assert token not in row.model_dump_json()


def test_logout_revokes_the_server_side_session(client: TestClient, small_school: SmallSchool,
                                                session: Session) -> None:
    signed_in(client, "parent@example.org")
    old_token = client.cookies[SESSION_COOKIE]
    page = client.get("/parent")
    response = client.post("/logout", data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    session.rollback()
    assert session.exec(select(WebSession)).one().revoked_at is not None
    # Replaying the old cookie, as a thief who copied it would, no longer works.
    client.cookies.set(SESSION_COOKIE, old_token)
    assert client.get("/parent").status_code == 303
    assert "logout" in audit_actions(session)


def test_login_never_reuses_a_cookie_the_browser_brought(
    client: TestClient, small_school: SmallSchool
) -> None:
    planted = "planted-by-someone-else-" + "x" * 20
    client.cookies.set(SESSION_COOKIE, planted)
    response = login(client, "parent@example.org")
    assert response.status_code == 303
    first = response.cookies[SESSION_COOKIE]
    assert first != planted
    client.cookies.clear()
    assert login(client, "parent@example.org").cookies[SESSION_COOKIE] != first


def test_signing_in_over_a_live_session_revokes_it(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    signed_in(client, "other@example.org")
    first = client.cookies[SESSION_COOKIE]
    token = csrf_from(client.get("/parent").text)
    response = client.post("/login", data={
        "email": "parent@example.org", "password": PASSWORD, "csrf_token": token,
    })
    assert response.status_code == 303
    assert client.cookies[SESSION_COOKIE] != first
    old = session.exec(select(WebSession).where(
        WebSession.token_sha256 == token_digest(first))).one()
    assert old.revoked_at is not None


def test_idle_session_expires(client: TestClient, small_school: SmallSchool, settings,
                              clock: FakeClock) -> None:
    signed_in(client, "parent@example.org")
    clock.advance(minutes=settings.session_idle_minutes - 1)
    assert client.get("/parent").status_code == 200  # activity resets the idle timer
    clock.advance(minutes=settings.session_idle_minutes - 1)
    assert client.get("/parent").status_code == 200
    clock.advance(minutes=settings.session_idle_minutes + 1)
    response = client.get("/parent")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fparent"


def test_session_has_an_absolute_lifetime(client: TestClient, small_school: SmallSchool,
                                          settings, clock: FakeClock) -> None:
    signed_in(client, "parent@example.org")
    for _ in range(settings.session_max_hours):
        clock.advance(minutes=59)
        assert client.get("/parent").status_code == 200
    clock.advance(minutes=settings.session_max_hours + 1)
    assert client.get("/parent").status_code == 303


def test_last_seen_is_written_at_most_once_a_minute(
    client: TestClient, small_school: SmallSchool, session: Session, clock: FakeClock
) -> None:
    signed_in(client, "parent@example.org")
    start = clock()
    clock.advance(seconds=30)
    client.get("/parent")
    session.rollback()
    assert session.exec(select(WebSession)).one().last_seen_at == start
    clock.advance(seconds=31)
    client.get("/parent")
    session.rollback()
    assert session.exec(select(WebSession)).one().last_seen_at == clock()


def test_login_returns_to_the_page_asked_for(client: TestClient, small_school: SmallSchool) -> None:
    first = client.get("/parent/children/1")
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=%2Fparent%2Fchildren%2F1"
    response = login(client, "parent@example.org", next="/parent/children/1")
    assert response.headers["location"] == "/parent/children/1"


def test_login_never_redirects_off_site(client: TestClient, small_school: SmallSchool) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        client.cookies.clear()
        response = login(client, "parent@example.org", next=target)
        assert response.headers["location"] == "/"
