"""French by default, English on request, and both catalogs complete."""

from __future__ import annotations

from sqlmodel import Session

from parent_portal.i18n import LANG_COOKIE, catalog, from_accept_language
from tests.factories import SmallSchool
from tests.parent_portal.conftest import TestClient, signed_in


def test_french_by_default(client: TestClient) -> None:
    page = client.get("/login")
    assert '<html lang="fr">' in page.text
    assert "Connexion" in page.text
    assert "Mot de passe" in page.text
    assert 'href="/login?lang=en"' in page.text


def test_english_with_the_switch_link_and_it_sticks(client: TestClient) -> None:
    page = client.get("/login?lang=en")
    assert '<html lang="en">' in page.text
    assert "Sign in" in page.text
    assert "Password" in page.text
    assert f"{LANG_COOKIE}=en" in page.headers["set-cookie"]
    again = client.get("/login")
    assert '<html lang="en">' in again.text
    assert 'href="/login?lang=fr"' in again.text


def test_switch_link_keeps_the_other_parameters(client: TestClient) -> None:
    page = client.get("/login?next=%2Fstaff")
    assert 'href="/login?next=%2Fstaff&amp;lang=en"' in page.text


def test_browser_language_is_used_when_nothing_else_is_set(client: TestClient) -> None:
    page = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"})
    assert '<html lang="en">' in page.text


def test_users_own_locale_beats_the_browser(client: TestClient, small_school: SmallSchool,
                                            session: Session) -> None:
    small_school.parent.locale = "en"
    session.add(small_school.parent)
    session.commit()
    signed_in(client, "parent@example.org")
    page = client.get("/parent", headers={"Accept-Language": "fr-FR"})
    assert '<html lang="en">' in page.text
    assert "My children" in page.text
    page = client.get("/parent?lang=fr")
    assert '<html lang="fr">' in page.text
    assert "Mes enfants" in page.text


def test_error_pages_are_translated(client: TestClient) -> None:
    assert "Cette page n" in client.get("/nowhere").text
    assert "This page does not exist." in client.get("/nowhere?lang=en").text


def test_accept_language_parsing() -> None:
    assert from_accept_language("de-DE, en;q=0.8, fr;q=0.9") == "fr"
    assert from_accept_language("de, it") is None
    assert from_accept_language("en;q=0, fr;q=0.1") == "fr"
    assert from_accept_language("en;q=bogus, fr") == "fr"


def test_catalogs_have_the_same_keys() -> None:
    assert set(catalog("fr")) == set(catalog("en"))
    assert all(value.strip() for value in catalog("fr").values())
