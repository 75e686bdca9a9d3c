"""Two-step verification: setting it up, signing in with it, codes used once, throttling,
turning it off, and staff who must have it."""

from __future__ import annotations

from datetime import timedelta
from html import unescape

import pytest
from fastapi import FastAPI
from sqlmodel import Session, select

from parent_portal.app import create_app
from parent_portal.pending import PENDING_COOKIE
from parent_portal.sessions import SESSION_COOKIE
from school.auth_models import PendingLogin, RecoveryCode
from school.models import AuditEvent, User, WebSession
from school.security import token_digest
from school.settings import Settings
from tests.conftest import FakeClock
from tests.factories import SmallSchool
from tests.parent_portal.accounts import (
    code_at,
    enrol,
    login_with_code,
    recovery_codes_from,
    second_step,
    secret_from,
)
from tests.parent_portal.conftest import TestClient, login, signed_in
from tests.parent_portal.forms import hidden_fields, submit


def actions(session: Session) -> list[str]:
    session.rollback()
    return [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.id)).all()]


def user_row(session: Session, email: str) -> User:
    session.rollback()
    return session.exec(select(User).where(User.email == email)).one()


@pytest.fixture
def parent_with_totp(client: TestClient, small_school: SmallSchool,
                     clock: FakeClock) -> tuple[str, list[str]]:
    """The parent has TOTP on and is signed out; the clock has moved past the code used."""
    signed_in(client, "parent@example.org")
    secret, codes = enrol(client, clock.now)
    client.cookies.clear()
    clock.advance(seconds=30)
    return secret, codes


def test_setting_up_shows_a_key_and_a_qr_code_and_needs_a_right_code(
    client: TestClient, small_school: SmallSchool, session: Session, clock: FakeClock
) -> None:
    signed_in(client, "parent@example.org")
    assert "Activer la validation en deux étapes" in client.get("/account/totp").text
    submit(client, "/account/totp", "/account/totp/setup")
    page = client.get("/account/totp")
    assert page.headers["cache-control"] == "no-store"
    secret = secret_from(page.text)
    assert '<img class="qr" src="/account/totp/qr.svg"' in page.text
    qr = client.get("/account/totp/qr.svg")
    assert (qr.status_code, qr.headers["content-type"]) == (200, "image/svg+xml")
    assert qr.text.startswith("<svg")
    assert "<script" not in qr.text
    assert "<script" not in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # nothing loosened
    assert user_row(session, "parent@example.org").totp_enabled_at is None

    wrong = client.post("/account/totp/confirm", data={
        **hidden_fields(page.text, "/account/totp/confirm"), "code": "000000"})
    assert wrong.status_code == 400
    assert "Ce code n'est pas valable" in unescape(wrong.text)
    assert user_row(session, "parent@example.org").totp_enabled_at is None

    done = client.post("/account/totp/confirm", data={
        **hidden_fields(page.text, "/account/totp/confirm"), "code": code_at(secret, clock.now)})
    assert done.status_code == 200
    codes = recovery_codes_from(done.text)
    assert len(codes) == 10 == len(set(codes))
    user = user_row(session, "parent@example.org")
    assert user.totp_enabled_at == clock.now
    stored = session.exec(select(RecoveryCode).where(RecoveryCode.user_id == user.id)).all()
    assert {row.code_sha256 for row in stored} == {token_digest(c.replace("-", ""))
                                                  for c in codes}
    assert {"totp.setup", "totp.enable"} <= set(actions(session))
    # Shown once: the page does not show them again.
    assert codes[0] not in client.get("/account/totp").text


def test_sign_in_asks_for_the_code_and_opens_no_session_before_it(
    client: TestClient, parent_with_totp: tuple[str, list[str]], session: Session,
    clock: FakeClock
) -> None:
    secret, _ = parent_with_totp
    before = len(session.exec(select(WebSession)).all())
    first = login(client, "parent@example.org")
    assert first.status_code == 303
    assert first.headers["location"] == "/login/totp"
    assert SESSION_COOKIE not in first.cookies
    assert PENDING_COOKIE in first.cookies
    assert "Path=/login" in first.headers["set-cookie"]
    session.rollback()
    assert len(session.exec(select(WebSession)).all()) == before
    assert client.get("/parent").status_code == 303  # still signed out

    done = second_step(client, code_at(secret, clock.now))
    assert done.status_code == 303
    assert done.headers["location"] == "/"
    assert SESSION_COOKIE in done.cookies
    assert client.get("/parent").status_code == 200
    assert "login.password_ok" in actions(session)
    success = session.exec(select(AuditEvent).where(AuditEvent.action == "login.success")
                           .order_by(AuditEvent.id.desc())).first()  # type: ignore[union-attr]
    assert success is not None
    assert success.detail == {"factor": "totp"}


def test_a_code_works_once(
    client: TestClient, parent_with_totp: tuple[str, list[str]], clock: FakeClock
) -> None:
    secret, _ = parent_with_totp
    code = code_at(secret, clock.now)
    assert login_with_code(client, "parent@example.org", code).status_code == 303
    client.cookies.clear()
    clock.advance(seconds=5)  # same 30-second step: someone who saw it types it in
    replay = login_with_code(client, "parent@example.org", code)
    assert replay.status_code == 401
    assert "déjà servi" in replay.text
    assert SESSION_COOKIE not in replay.cookies
    # An older code that is still inside the drift window is refused too.
    client.cookies.clear()
    older = code_at(secret, clock.now - timedelta(seconds=30))
    assert login_with_code(client, "parent@example.org", older).status_code == 401
    clock.advance(seconds=30)
    client.cookies.clear()
    assert login_with_code(client, "parent@example.org",
                           code_at(secret, clock.now)).status_code == 303


def test_codes_from_a_slightly_wrong_phone_clock_are_accepted(
    client: TestClient, parent_with_totp: tuple[str, list[str]], clock: FakeClock
) -> None:
    secret, _ = parent_with_totp
    ahead = code_at(secret, clock.now + timedelta(seconds=30))
    assert login_with_code(client, "parent@example.org", ahead).status_code == 303
    client.cookies.clear()
    clock.advance(minutes=5)
    far = code_at(secret, clock.now + timedelta(minutes=2))
    assert login_with_code(client, "parent@example.org", far).status_code == 401


def test_wrong_codes_are_throttled_like_passwords(
    client: TestClient, parent_with_totp: tuple[str, list[str]], clock: FakeClock,
    settings: Settings
) -> None:
    secret, _ = parent_with_totp
    assert login(client, "parent@example.org").status_code == 303
    for _ in range(settings.login_max_failures):
        assert second_step(client, "123456").status_code == 401
    locked = second_step(client, code_at(secret, clock.now))
    assert locked.status_code == 429
    # Nor can the password step start over to get fresh tries.
    client.cookies.clear()
    assert login(client, "parent@example.org").status_code == 429
    clock.advance(minutes=settings.login_window_minutes, seconds=1)
    client.cookies.clear()
    assert login_with_code(client, "parent@example.org",
                           code_at(secret, clock.now)).status_code == 303


def test_the_waiting_step_expires(
    client: TestClient, parent_with_totp: tuple[str, list[str]], clock: FakeClock,
    session: Session
) -> None:
    secret, _ = parent_with_totp
    login(client, "parent@example.org")
    clock.advance(minutes=6)
    page = client.get("/login/totp")
    assert page.status_code == 303
    assert page.headers["location"] == "/login"
    csrf = hidden_fields(client.get("/login").text, "/login")["csrf_token"]
    late = client.post("/login/totp", data={"csrf_token": csrf,
                                            "code": code_at(secret, clock.now)})
    assert late.status_code == 303
    assert late.headers["location"] == "/login"
    assert SESSION_COOKIE not in late.cookies
    session.rollback()
    assert session.exec(select(PendingLogin)).one().ended_at is None  # simply expired


def test_a_recovery_code_signs_in_once(
    client: TestClient, parent_with_totp: tuple[str, list[str]], session: Session
) -> None:
    _, codes = parent_with_totp
    assert login_with_code(client, "parent@example.org", codes[3].upper()).status_code == 303
    client.cookies.clear()
    assert login_with_code(client, "parent@example.org", codes[3]).status_code == 401
    signed_in_page = client.get("/account")
    assert signed_in_page.status_code == 303
    client.cookies.clear()
    login_with_code(client, "parent@example.org", codes[4])
    assert "Codes de secours restants : 8." in client.get("/account").text


def test_turning_it_off_needs_a_current_code(
    client: TestClient, parent_with_totp: tuple[str, list[str]], session: Session,
    clock: FakeClock
) -> None:
    secret, _ = parent_with_totp
    code = code_at(secret, clock.now)
    login_with_code(client, "parent@example.org", code)
    refused = submit(client, "/account/totp", "/account/totp/disable", code="654321")
    assert refused.status_code == 400
    # The code just used to sign in cannot be used again to turn it off.
    replay = submit(client, "/account/totp", "/account/totp/disable", code=code)
    assert replay.status_code == 400
    assert user_row(session, "parent@example.org").totp_enabled_at is not None
    clock.advance(seconds=30)
    done = submit(client, "/account/totp", "/account/totp/disable",
                  code=code_at(secret, clock.now))
    assert done.status_code == 303
    user = user_row(session, "parent@example.org")
    assert (user.totp_secret, user.totp_enabled_at) == (None, None)
    assert session.exec(select(RecoveryCode)).all() == []
    assert "totp.disable" in actions(session)
    client.cookies.clear()
    assert login(client, "parent@example.org").headers["location"] == "/"


@pytest.fixture
def strict_app(settings: Settings, engine, clock: FakeClock) -> FastAPI:
    return create_app(settings.model_copy(update={"require_totp_for_staff": True}), engine,
                      clock=clock)


def test_office_and_admin_must_enrol_before_anything_else(
    strict_app: FastAPI, small_school: SmallSchool, session: Session, clock: FakeClock
) -> None:
    with TestClient(strict_app, follow_redirects=False) as client:
        signed_in(client, "admin@example.org")
        for path in ("/", "/staff", "/account", "/account/sessions", "/staff/reports", "/till"):
            response = client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == "/account/totp"
        assert client.get("/staff", headers={"accept": "application/json"}).status_code == 403
        page = client.get("/account/totp")
        assert "Votre rôle à l'école impose la validation en deux étapes" in unescape(page.text)
        secret, _ = enrol(client, clock.now)
        assert client.get("/staff").status_code == 200
        # Required, so it cannot be turned off: no form for it, and the server refuses.
        page = client.get("/account/totp")
        assert "elle ne peut pas être désactivée" in page.text
        assert 'action="/account/totp/disable"' not in page.text
        clock.advance(seconds=30)
        refused = client.post("/account/totp/disable", data={
            **hidden_fields(page.text, "/account/totp/recovery-codes"),
            "code": code_at(secret, clock.now)})
        assert refused.status_code == 403
        assert user_row(session, "admin@example.org").totp_enabled_at is not None
        client.cookies.clear()
        assert login_with_code(client, "admin@example.org",
                               code_at(secret, clock.now)).status_code == 303


def test_the_rule_leaves_other_roles_alone(
    strict_app: FastAPI, small_school: SmallSchool
) -> None:
    with TestClient(strict_app, follow_redirects=False) as client:
        signed_in(client, "teacher@example.org")
        assert client.get("/staff").status_code == 200
        client.cookies.clear()
        signed_in(client, "parent@example.org")
        assert client.get("/parent").status_code == 200


def test_sign_out_stays_possible_before_enrolling(
    strict_app: FastAPI, small_school: SmallSchool
) -> None:
    with TestClient(strict_app, follow_redirects=False) as client:
        signed_in(client, "office@example.org")
        page = client.get("/account/totp")
        response = client.post("/logout", data=hidden_fields(page.text, "/logout"))
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
        assert client.get("/account/totp").status_code == 303


def test_the_secret_is_stored_sealed_with_the_secret_key(
    parent_with_totp: tuple[str, list[str]], session: Session, settings: Settings,
) -> None:
    """A copied database or backup hands out no second factor."""
    from school import totp

    secret, _ = parent_with_totp
    stored = session.exec(select(User.totp_secret).where(
        User.email == "parent@example.org")).one()
    assert stored is not None
    assert secret not in stored
    assert totp.open_secret(stored, settings.effective_secret_key()) == secret
