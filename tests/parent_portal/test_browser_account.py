"""Account security in headless Chromium: a parent resets a forgotten password through the
e-mail a real SMTP server receives; an office member, whose role requires two-step
verification, is sent to set it up, reads the key off the page into an 'app' (pyotp),
and signs in with a code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page
from sqlalchemy.engine import Engine

from parent_portal.app import create_app
from school.settings import Settings
from tests.conftest import FakeClock
from tests.factories import SmallSchool
from tests.live import serving
from tests.parent_portal.test_browser import (  # noqa: F401 - fixtures used by name
    SCREENSHOTS,
    browser,
    live_server,
    page,
    sign_in,
)
from tests.smtp import Inbox

pytestmark = pytest.mark.browser

NEW_PASSWORD = "les moulins tournent"
LINK = re.compile(r"http://127\.0\.0\.1:\d+(/login/reset/[A-Za-z0-9_-]+)")


@pytest.fixture
def settings(tmp_path: Path, smtp: Inbox) -> Settings:
    """The test settings, with the local SMTP server and office staff held to TOTP."""
    return Settings(environment="test", data_dir=tmp_path / "var", secret_key="t" * 40,
                    database_url=f"sqlite:///{tmp_path / 'moulin.db'}",
                    smtp_host=smtp.host, smtp_port=smtp.port, require_totp_for_staff=True)


@pytest.fixture
def mailing_server(settings: Settings, engine: Engine, clock: FakeClock,
                   small_school: SmallSchool) -> Iterator[str]:
    """The portal with its start-up run, so that its outbox worker sends the e-mails."""
    with serving(create_app(settings, engine, clock=clock), lifespan=True) as base:
        yield base


def test_a_parent_resets_a_forgotten_password_by_email(
    mailing_server: str, page: Page, smtp: Inbox  # noqa: F811
) -> None:
    base = mailing_server
    page.goto(f"{base}/login")
    page.get_by_role("link", name="Mot de passe oublié ?").click()
    page.get_by_label("Adresse e-mail").fill("parent@example.org")
    page.get_by_role("button", name="Recevoir le lien").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text().startswith("Si un compte utilise")

    smtp.wait_for(1)
    recipients, message = smtp.received[0]
    assert recipients == ["parent@example.org"]
    match = LINK.search(message.get_content())
    assert match, message.get_content()
    page.goto(base + match.group(1))
    assert page.get_by_role("heading", level=1).inner_text() == "Choisir un nouveau mot de passe"
    # 'motdepasse' is long enough, and one of the most used passwords in France.
    page.get_by_label("Nouveau mot de passe", exact=True).fill("motdepasse")
    page.get_by_label("Nouveau mot de passe, une seconde fois").fill("motdepasse")
    page.get_by_role("button", name="Enregistrer le mot de passe").click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").inner_text() == (
        "Ce mot de passe fait partie des plus utilisés : choisissez-en un autre.")
    page.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Nouveau mot de passe, une seconde fois").fill(NEW_PASSWORD)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "password-reset.png"), full_page=True)
    page.get_by_role("button", name="Enregistrer le mot de passe").click()
    page.wait_for_load_state()
    assert page.url == f"{base}/login?done=reset"
    assert page.get_by_role("status").inner_text().startswith("Votre mot de passe a été changé")

    sign_in(page, base, "parent@example.org", NEW_PASSWORD)
    assert page.url == f"{base}/parent"


def test_office_staff_set_up_two_step_verification_and_sign_in_with_it(
    live_server: str, page: Page, clock: FakeClock  # noqa: F811
) -> None:
    sign_in(page, live_server, "office@example.org")
    # The role requires it: straight to the set-up page, whatever was asked for.
    assert page.url == f"{live_server}/account/totp"
    page.goto(f"{live_server}/staff")
    assert page.url == f"{live_server}/account/totp"
    assert "impose la validation en deux étapes" in page.locator("#totp-required").inner_text()
    page.get_by_role("button", name="Activer la validation en deux étapes").click()
    page.wait_for_load_state()
    qr = page.get_by_role("img", name="QR code à scanner avec l'application d'authentification")
    assert qr.is_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    app = pyotp.TOTP(secret)  # the phone
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "totp-enrol.png"), full_page=True)

    page.get_by_label("Code à 6 chiffres").fill(app.at(clock.now))
    page.get_by_role("button", name="Confirmer").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Codes de secours"
    assert page.locator("#recovery-codes li").count() == 10
    page.get_by_role("link", name="J'ai noté mes codes").click()
    page.wait_for_load_state()
    assert page.url == f"{live_server}/account"
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_load_state()

    clock.advance(seconds=30)
    sign_in(page, live_server, "office@example.org")
    assert page.url == f"{live_server}/login/totp"
    page.get_by_label("Code à 6 chiffres").fill(app.at(clock.now))
    page.get_by_role("button", name="Valider").click()
    page.wait_for_load_state()
    assert page.url == f"{live_server}/staff"
