"""The administration pages in headless Chromium: an admin adds a till and sees its token
once, then revokes it."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page

from tests.parent_portal.test_browser import (  # noqa: F401 - fixtures used by name
    SCREENSHOTS,
    browser,
    live_server,
    page,
    sign_in,
)

pytestmark = pytest.mark.browser


def snapshot_status(base: str, token: str) -> int:
    return httpx.get(f"{base}/api/till/snapshot", timeout=10,
                     headers={"Authorization": f"Bearer {token}"}).status_code


def test_an_admin_adds_a_till_and_sees_its_token_once(live_server: str,  # noqa: F811
                                                      page: Page) -> None:  # noqa: F811
    sign_in(page, live_server, "admin@example.org")
    page.get_by_role("link", name="Administration").first.click()
    page.get_by_role("link", name="Caisses et nœuds caméra").first.click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("Administration")
    assert page.get_by_text("Aucun appareil pour l'instant.").is_visible()

    page.get_by_label("Nom").fill("Caisse du réfectoire")
    assert page.get_by_label("Caisse", exact=True).is_checked()
    page.get_by_role("button", name="Ajouter et afficher son jeton").click()
    page.wait_for_load_state()
    token_box = page.get_by_label("Jeton de l'appareil")
    token = token_box.input_value()
    assert len(token) == 43
    assert page.get_by_text("il n'est affiché qu'une fois").is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin-devices.png"), full_page=True)
    assert snapshot_status(live_server, token) == 200

    page.get_by_role("link", name="← Caisses et nœuds caméra").click()
    page.wait_for_load_state()
    row = page.locator("table.devices tbody tr")
    assert row.count() == 1
    assert "Caisse du réfectoire" in row.inner_text()
    assert token not in page.content()  # never shown again

    page.get_by_role("button", name="Révoquer Caisse du réfectoire").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text().startswith("Appareil révoqué")
    assert snapshot_status(live_server, token) == 401
