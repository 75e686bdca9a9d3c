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


def _browser(app, ip: str, known: TestClient | None = None) -> TestClient:  # type: ignore[no-untyped-def]
    """A browser at `ip`; with `known`, holding that browser's device cookie (only)."""
    browser = TestClient(app, follow_redirects=False, client=(ip, 50000))
    if known is not None:
        browser.cookies.set("moulin_device", known.cookies["moulin_device"])
    return browser


def test_an_attackers_guesses_do_not_lock_the_owner_out(
    app, small_school: SmallSchool, settings, clock: FakeClock  # type: ignore[no-untyped-def]
) -> None:
    """The review's case: wrong passwords from one address gave the owner, elsewhere and
    with the right password, a 429. Two browsers: the attacker's and the owner's."""
    owner_laptop = _browser(app, "192.0.2.10")
    assert login(owner_laptop, "parent@example.org").status_code == 303  # a known device
    attacker = _browser(app, "198.51.100.66")
    fail(attacker, "parent@example.org", settings.login_max_failures)
    assert login(attacker, "parent@example.org").status_code == 429  # slowed: the guesser
    # The owner at another address, on a browser never used before, signs in fine.
    phone = _browser(app, "203.0.113.5")
    assert login(phone, "parent@example.org").status_code == 303
    # The owner's known browser, even behind the attacker's own address (a shared NAT).
    same_nat = _browser(app, "198.51.100.66", known=owner_laptop)
    assert login(same_nat, "parent@example.org").status_code == 303


def test_guesses_from_many_addresses_hold_back_strangers_but_not_known_devices(
    app, small_school: SmallSchool, settings, clock: FakeClock  # type: ignore[no-untyped-def]
) -> None:
    owner = _browser(app, "192.0.2.10")
    assert login(owner, "parent@example.org").status_code == 303
    per_address = settings.login_max_failures
    for n in range(settings.login_max_failures_per_account // per_address):
        fail(_browser(app, f"198.51.100.{n + 1}"), "parent@example.org", per_address)
    assert login(_browser(app, "203.0.113.5"), "parent@example.org").status_code == 429
    assert login(_browser(app, "192.0.2.10", known=owner),
                 "parent@example.org").status_code == 303


def test_a_known_device_is_locked_by_its_own_failures_only(
    app, small_school: SmallSchool, settings, clock: FakeClock  # type: ignore[no-untyped-def]
) -> None:
    owner = _browser(app, "192.0.2.10")
    assert login(owner, "parent@example.org").status_code == 303
    stolen = _browser(app, "198.51.100.66", known=owner)
    fail(stolen, "parent@example.org", settings.login_max_failures)
    assert login(stolen, "parent@example.org").status_code == 429
    # A forged cookie (another account's id, or a bad signature) is a stranger's.
    forged = _browser(app, "198.51.100.67")
    user_id, nonce, mac = owner.cookies["moulin_device"].split(".")
    forged.cookies.set("moulin_device", f"{user_id}.{nonce}.{'0' * len(mac)}")
    assert login(forged, "parent@example.org").status_code == 303
