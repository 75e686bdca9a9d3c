"""Repeated failed sign-ins are refused for a while, even with the right password."""

from __future__ import annotations

from sqlmodel import Session, select

from parent_portal.sessions import SESSION_COOKIE
from school.models import LoginFailure
from tests.conftest import FakeClock
from tests.factories import SmallSchool
from tests.parent_portal.conftest import TestClient, login


def fail(client: TestClient, email: str, times: int) -> None:
    for _ in range(times):
        assert login(client, email, "wrong password!").status_code == 401


def test_locked_after_repeated_failures_even_with_the_right_password(
    client: TestClient, small_school: SmallSchool, settings, clock: FakeClock
) -> None:
    fail(client, "parent@example.org", settings.login_max_failures)
    response = login(client, "parent@example.org")
    assert response.status_code == 429
    assert SESSION_COOKIE not in response.cookies
    assert "Trop de tentatives de connexion échouées" in response.text
    assert "Réessayez dans 15 min" in response.text
    assert int(response.headers["retry-after"]) == settings.login_window_minutes * 60


def test_lock_lifts_after_the_window(
    client: TestClient, small_school: SmallSchool, settings, clock: FakeClock
) -> None:
    fail(client, "parent@example.org", settings.login_max_failures)
    clock.advance(minutes=settings.login_window_minutes - 1)
    assert login(client, "parent@example.org").status_code == 429
    clock.advance(minutes=1, seconds=1)
    assert login(client, "parent@example.org").status_code == 303


def test_refusal_does_not_check_the_password(
    client: TestClient, small_school: SmallSchool, settings, monkeypatch
) -> None:
    fail(client, "parent@example.org", settings.login_max_failures)
    import parent_portal.routes.auth as auth

    def must_not_run(*_: object) -> bool:
        raise AssertionError("password checked while locked")

    monkeypatch.setattr(auth, "verify_password", must_not_run)
    assert login(client, "parent@example.org").status_code == 429


def test_refused_attempts_do_not_extend_the_lock(
    client: TestClient, small_school: SmallSchool, settings, clock: FakeClock, session: Session
) -> None:
    fail(client, "parent@example.org", settings.login_max_failures)
    for _ in range(3):
        assert login(client, "parent@example.org", "wrong again!").status_code == 429
    assert len(session.exec(select(LoginFailure)).all()) == settings.login_max_failures


def test_other_accounts_are_not_locked(
    client: TestClient, small_school: SmallSchool, settings
) -> None:
    fail(client, "parent@example.org", settings.login_max_failures)
    assert login(client, "other@example.org").status_code == 303


def test_one_address_guessing_many_accounts_is_stopped(
    settings, engine, clock: FakeClock, small_school: SmallSchool
) -> None:
    from parent_portal.app import create_app

    strict = settings.model_copy(update={"login_max_failures_per_ip": 3})
    with TestClient(create_app(strict, engine, clock=clock), follow_redirects=False) as client:
        for n in range(3):
            assert login(client, f"guess{n}@example.org", "wrong!").status_code == 401
        assert login(client, "teacher@example.org").status_code == 429


def test_success_clears_that_emails_failures(
    client: TestClient, small_school: SmallSchool, settings, session: Session
) -> None:
    fail(client, "parent@example.org", settings.login_max_failures - 1)
    fail(client, "other@example.org", 1)
    assert login(client, "parent@example.org").status_code == 303
    client.cookies.clear()
    emails = [f.email for f in session.exec(select(LoginFailure)).all()]
    assert emails == ["other@example.org"]
    fail(client, "parent@example.org", settings.login_max_failures - 1)
    assert login(client, "parent@example.org").status_code == 303


def test_text_that_is_not_an_email_is_not_stored(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    """People type their password into the e-mail box; it must not land in the table."""
    fail(client, "MySecretPassw0rd", 1)
    stored = session.exec(select(LoginFailure)).one().email
    assert "mysecretpassw0rd" not in stored.lower()
