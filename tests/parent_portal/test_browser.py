"""The pages in headless Chromium: what a parent and a member of staff actually see."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy.engine import Engine
from sqlmodel import Session

from cardpay import cards, office
from cardpay.account_models import Tender
from cardpay.accounts import pupil_account, school_account
from cardpay.ledger import post
from cardpay.models import AccountKind, CardKind, TransactionKind
from parent_portal.app import create_app
from school.devices import add_device
from school.models import DeviceKind
from school.settings import Settings
from tests import factories
from tests.conftest import FakeClock
from tests.factories import PASSWORD, SmallSchool
from tests.live import serving

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def live_server(settings: Settings, engine: Engine, clock: FakeClock,
                small_school: SmallSchool) -> Iterator[str]:
    """The portal under uvicorn on a free local port, in a thread stopped after the test."""
    with serving(create_app(settings, engine, clock=clock)) as base:
        yield base


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1024, "height": 640}, locale="fr-FR")
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_load_state()


def test_parent_sees_their_two_children(live_server: str, page: Page) -> None:
    sign_in(page, live_server, "parent@example.org")
    assert page.url == f"{live_server}/parent"
    names = page.locator("li.child h2").all_inner_texts()
    assert sorted(names) == ["Jules Martin", "Léa Martin"]
    assert "Hugo" not in page.content()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "parent-home.png"), full_page=True)

    page.get_by_role("link", name="Léa Martin").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Léa Martin"
    assert page.get_by_text("arachide").is_visible()

    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_load_state()
    assert page.url == f"{live_server}/login"


def test_staff_see_the_classes(live_server: str, page: Page) -> None:
    sign_in(page, live_server, "office@example.org")  # a teacher sees only their own
    assert page.url == f"{live_server}/staff"
    rows = page.locator("table.classes tbody tr").all_inner_texts()
    assert [" ".join(row.split()) for row in rows] == ["CE1 1", "CP 2"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "staff-home.png"), full_page=True)

    page.get_by_role("link", name="CP").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Classe CP"
    assert page.get_by_role("rowheader").all_inner_texts() == ["Bernard Hugo", "Martin Léa"]


def test_wrong_password_shows_an_error(live_server: str, page: Page) -> None:
    sign_in(page, live_server, "parent@example.org", "not the password")
    assert page.url.startswith(f"{live_server}/login")
    assert page.get_by_role("alert").inner_text() == "Adresse e-mail ou mot de passe incorrect."


def test_language_switch(live_server: str, page: Page) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"


def test_parent_checks_the_balance_and_tops_up_online(
    live_server: str, page: Page, session: Session, small_school: SmallSchool
) -> None:
    lea = small_school.pupils[0]
    office.office_topup(session=session, pupil=lea, amount_cents=2000, tender=Tender.CHEQUE,
                        client_id="form-1", actor=office.Actor(small_school.office.id or 0),
                        clock=lambda: datetime(2026, 11, 23, 7, 40, tzinfo=UTC))
    for day in (23, 24):
        factories.meal(session, lea, 350, at=datetime(2026, 11, day, 11, 5, tzinfo=UTC))
    sign_in(page, live_server, "parent@example.org")
    page.get_by_role("link", name="Léa Martin").click()
    page.get_by_role("link", name="Compte cantine : solde, historique, recharge").click()
    assert page.locator("#balance").inner_text() == "13,00\u00a0€"
    kinds = page.locator("table.history .kind").all_inner_texts()
    assert kinds == ["Repas", "Repas", "Recharge"]
    assert "24/11/2026 12:05" in page.locator("table.history").inner_text()

    page.get_by_label("20,00\u00a0€").check()
    page.get_by_role("button", name="Payer en ligne").first.click()
    page.wait_for_load_state()
    assert page.url.startswith(f"{live_server}/payments/demo/")
    assert page.locator("#amount").inner_text() == "20,00\u00a0€"
    page.get_by_role("button", name="Payer (démo)").click()
    page.wait_for_load_state()
    assert page.url.endswith("/account?topup=paid")
    assert page.get_by_role("status").inner_text().startswith("Merci")
    assert page.locator("#balance").inner_text() == "33,00\u00a0€"
    assert page.locator("table.history .kind").first.inner_text() == "Recharge"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "parent-account.png"), full_page=True)


def test_the_till_screen_shows_a_tap_as_it_happens(
    live_server: str, page: Page, session: Session, small_school: SmallSchool, clock: FakeClock
) -> None:
    lea = small_school.pupils[0]
    lea.diet_notes = "sans porc"
    device, token = add_device(session=session, school=small_school.school,
                               kind=DeviceKind.TILL, name="Cantine")
    cards.issue_card(session=session, pupil=lea, uid="A1B2C3D4", kind=CardKind.UID)
    cash = school_account(session=session, school_id=small_school.school.id or 0,
                          kind=AccountKind.CASH_DRAWER)
    post(session=session, school_id=small_school.school.id or 0, kind=TransactionKind.TOPUP,
         client_id="topup-lea", legs=[(pupil_account(session=session, pupil=lea), 2000),
                                      (cash, -2000)])
    session.commit()
    sign_in(page, live_server, "cashier@example.org")
    page.goto(f"{live_server}/till/{device.id}")
    page.wait_for_selector("#till-link.up", timeout=10_000)
    response = httpx.post(
        f"{live_server}/api/till/taps",
        json={"tap_id": str(uuid.uuid4()), "read_at": clock.now.isoformat(),
              "card": {"uid": "A1B2C3D4"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    page.wait_for_selector("#verdict.accepted", timeout=10_000)
    verdict = page.locator("#verdict")
    assert verdict.locator(".decision").inner_text() == "Accepté"
    assert verdict.locator(".name").inner_text() == "Léa Martin"
    assert verdict.locator(".allergies").is_visible()
    assert "arachide" in verdict.locator(".allergies").inner_text()
    assert verdict.locator(".initials").inner_text() == "LM"
    assert "16,50" in verdict.locator(".balance").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "till-screen.png"), full_page=True)
