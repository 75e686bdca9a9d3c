"""The camera pages in headless Chromium: a parent sees the live image of their children's
rooms; the office draws a mask; a teacher pauses a room with one click."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.parent_portal.test_browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, sign_in
from tests.webcam.live import CameraSchool

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def tab(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1024, "height": 800}, locale="fr-FR")
    try:
        yield context.new_page()
    finally:
        context.close()


def wait_live(page: Page, selector: str = "img.live") -> None:
    page.wait_for_function(
        f"[...document.querySelectorAll('{selector}')].every(i => i.complete !== undefined"
        " && i.naturalWidth > 0)", timeout=10_000)


def test_a_parent_sees_the_live_image(base: str, equipped: CameraSchool, tab: Page) -> None:
    sign_in(tab, base, "parent@example.org")
    tab.get_by_role("link", name="Caméras des classes").click()
    tab.wait_for_load_state()
    assert tab.url == f"{base}/parent/cameras"
    images = tab.locator("img.live")
    assert images.count() == 2
    wait_live(tab)
    assert images.first.evaluate("i => i.naturalWidth") == 320
    first = images.first.screenshot()
    time.sleep(1.2)
    assert images.first.screenshot() != first  # moving: the scene and the clock change
    assert tab.get_by_text("Qui peut voir ces images").is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / "parent-cameras.png"), full_page=True)


def test_the_office_draws_a_mask_and_a_teacher_pauses(
    base: str, equipped: CameraSchool, tab: Page
) -> None:
    camera_id = equipped.cameras[0].id
    sign_in(tab, base, "office@example.org")
    tab.goto(f"{base}/staff/cameras/{camera_id}")
    tab.get_by_label("Masques de confidentialité").fill("0.55,0.05 0.95,0.05 0.95,0.55 0.55,0.55")
    tab.get_by_role("button", name="Enregistrer").click()
    tab.wait_for_load_state()
    assert "0.55,0.05 0.95,0.05" in tab.get_by_label("Masques de confidentialité").input_value()
    wait_live(tab)
    time.sleep(1.0)  # a few frames through the new mask
    tab.screenshot(path=str(SCREENSHOTS / "staff-camera.png"), full_page=True)
    tab.get_by_role("button", name="Se déconnecter").click()

    sign_in(tab, base, "teacher@example.org")
    tab.get_by_role("link", name="Caméras", exact=True).click()
    tab.wait_for_load_state()
    row = tab.locator(f'tr[data-camera="{camera_id}"]')
    row.get_by_role("button", name="Mettre en pause").click()
    tab.wait_for_load_state()
    assert "en pause" in tab.locator(f'tr[data-camera="{camera_id}"]').inner_text()
    tab.screenshot(path=str(SCREENSHOTS / "staff-cameras.png"), full_page=True)
