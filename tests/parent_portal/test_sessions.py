"""The user's own sessions: listing and signing them out; and changing the password, which
signs out every other session and gives the current one a fresh token."""

from __future__ import annotations

from collections.abc import Iterator
from html import unescape

import pytest
from fastapi import FastAPI
from sqlmodel import Session, select

from parent_portal.sessions import SESSION_COOKIE
from school.models import AuditEvent, User, WebSession
from school.security import token_digest, verify_password
from school.settings import Settings
from tests.factories import PASSWORD, SmallSchool
from tests.parent_portal.conftest import TestClient, csrf_from, login, signed_in
from tests.parent_portal.forms import hidden_fields, submit

NEW_PASSWORD = "a brand new sentence"
PHONE = "Mozilla/5.0 (Linux; Android 14) Firefox/132.0"


@pytest.fixture
def phone(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False, headers={"user-agent": PHONE}) as c:
        yield c


def actions(session: Session) -> list[str]:
    session.rollback()
    return [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.id)).all()]


def session_of(session: Session, client: TestClient) -> WebSession:
    session.rollback()
    return session.exec(select(WebSession).where(
        WebSession.token_sha256 == token_digest(client.cookies[SESSION_COOKIE]))).one()


def test_the_page_lists_live_sessions_and_marks_this_one(
    client: TestClient, phone: TestClient, small_school: SmallSchool, session: Session
) -> None:
    signed_in(phone, "parent@example.org")
    signed_in(client, "parent@example.org")
    signed_in(TestClient(phone.app, follow_redirects=False), "other@example.org")
    ended = TestClient(phone.app, follow_redirects=False)
    signed_in(ended, "parent@example.org")
    submit(ended, "/parent", "/logout")

    account = client.get("/account")
    assert 'href="/account/sessions"' in account.text
    assert "Connexions ouvertes : 2." in account.text
    page = client.get("/account/sessions")
    assert page.status_code == 200
    rows = page.text.split("<tbody>")[1].split("</tbody>")[0].split("<tr")[1:]
    assert len(rows) == 2  # the other user's and the signed-out one are not listed
    mine = session_of(session, client)
    this = [row for row in rows if "cette connexion" in row]
    assert len(this) == 1
    assert f"/account/sessions/{mine.id}/revoke" in this[0]
    assert PHONE in page.text
    assert "testclient" in page.text  # the address the session came from
    assert "24/11/2026 11:30" in page.text  # created, in the school's time


def test_signing_out_another_session(
    client: TestClient, phone: TestClient, small_school: SmallSchool, session: Session
) -> None:
    signed_in(phone, "parent@example.org")
    signed_in(client, "parent@example.org")
    target = session_of(session, phone)
    response = submit(client, "/account/sessions", f"/account/sessions/{target.id}/revoke")
    assert response.status_code == 303
    assert phone.get("/parent").status_code == 303
    assert client.get("/parent").status_code == 200
    assert "Connexion fermée." in client.get(response.headers["location"]).text
    assert "session.revoke" in actions(session)


def test_signing_out_this_session(client: TestClient, small_school: SmallSchool,
                                  session: Session) -> None:
    signed_in(client, "parent@example.org")
    mine = session_of(session, client)
    response = submit(client, "/account/sessions", f"/account/sessions/{mine.id}/revoke")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert client.get("/parent").status_code == 303


def test_signing_out_all_other_sessions(
    client: TestClient, phone: TestClient, small_school: SmallSchool, session: Session
) -> None:
    signed_in(phone, "parent@example.org")
    tablet = TestClient(phone.app, follow_redirects=False)
    signed_in(tablet, "parent@example.org")
    someone_else = TestClient(phone.app, follow_redirects=False)
    signed_in(someone_else, "other@example.org")
    signed_in(client, "parent@example.org")
    response = submit(client, "/account/sessions", "/account/sessions/revoke-others")
    assert response.status_code == 303
    assert phone.get("/parent").status_code == 303
    assert tablet.get("/parent").status_code == 303
    assert client.get("/parent").status_code == 200
    assert someone_else.get("/parent").status_code == 200
    assert "session.revoke_others" in actions(session)


def test_someone_elses_session_cannot_be_signed_out(
    client: TestClient, phone: TestClient, small_school: SmallSchool, session: Session
) -> None:
    signed_in(phone, "other@example.org")
    theirs = session_of(session, phone)
    signed_in(client, "parent@example.org")
    page = client.get("/account/sessions")
    response = client.post(f"/account/sessions/{theirs.id}/revoke",
                           data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 404
    assert phone.get("/parent").status_code == 200


def test_changing_the_password_ends_the_other_sessions_and_rotates_this_one(
    client: TestClient, phone: TestClient, small_school: SmallSchool, session: Session
) -> None:
    signed_in(phone, "parent@example.org")
    signed_in(client, "parent@example.org")
    old_cookie = client.cookies[SESSION_COOKIE]
    old_csrf = hidden_fields(client.get("/account/password").text, "/account/password")
    response = submit(client, "/account/password", "/account/password", current=PASSWORD,
                      password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/account?done=password"
    new_cookie = response.cookies[SESSION_COOKIE]
    assert new_cookie != old_cookie
    page = client.get("/account?done=password")
    assert page.status_code == 200
    assert "Mot de passe changé" in page.text
    assert hidden_fields(page.text, "/logout") != old_csrf  # a fresh anti-forgery token too
    assert phone.get("/parent").status_code == 303
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, old_cookie)
    assert client.get("/parent").status_code == 303  # the old token is worth nothing
    session.rollback()
    user = session.exec(select(User).where(User.email == "parent@example.org")).one()
    assert verify_password(NEW_PASSWORD, user.password_hash)
    assert "password.change" in actions(session)


@pytest.mark.parametrize(("current", "password", "confirm", "message"), [
    ("not my password", NEW_PASSWORD, NEW_PASSWORD, "Le mot de passe actuel n'est pas le bon"),
    (PASSWORD, "qwertyuiop", "qwertyuiop", "fait partie des plus utilisés"),
    (PASSWORD, "short", "short", "au moins 10 caractères"),
    (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!", "ne sont pas identiques"),
])
def test_a_refused_change_changes_nothing(
    client: TestClient, phone: TestClient, small_school: SmallSchool, session: Session,
    current: str, password: str, confirm: str, message: str
) -> None:
    signed_in(phone, "parent@example.org")
    signed_in(client, "parent@example.org")
    response = submit(client, "/account/password", "/account/password", current=current,
                      password=password, confirm=confirm)
    assert response.status_code == 400
    assert message in unescape(response.text)
    assert 'href="/parent"' in response.text  # the menu is there on the re-shown form
    assert phone.get("/parent").status_code == 200
    session.rollback()
    user = session.exec(select(User).where(User.email == "parent@example.org")).one()
    assert verify_password(PASSWORD, user.password_hash)


def test_guessing_the_current_password_is_throttled(
    client: TestClient, small_school: SmallSchool, settings: Settings
) -> None:
    signed_in(client, "parent@example.org")
    for _ in range(settings.login_max_failures):
        refused = submit(client, "/account/password", "/account/password",
                         current="a wrong guess", password=NEW_PASSWORD, confirm=NEW_PASSWORD)
        assert refused.status_code == 400
    locked = submit(client, "/account/password", "/account/password", current=PASSWORD,
                    password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert locked.status_code == 429
    # Signed out, the same browser (its device cookie) is still held back: the guesses
    # were its own (a stranger's browser has its own count: test_throttle.py).
    device = client.cookies["moulin_device"]
    client.cookies.clear()
    client.cookies.set("moulin_device", device)
    assert login(client, "parent@example.org").status_code == 429
