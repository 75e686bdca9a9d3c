"""The register of processing page: for office and admin staff, drawn up from the
running deployment's settings and database."""

from __future__ import annotations

import html
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

from parent_portal.app import create_app
from school.settings import Settings
from tests.conftest import FakeClock
from tests.factories import SmallSchool
from tests.parent_portal.conftest import signed_in
from webcam.models import Camera


def test_office_reads_the_register_and_teachers_may_not(
    client: TestClient, small_school: SmallSchool
) -> None:
    signed_in(client, "teacher@example.org")
    assert "/staff/gdpr/register" not in client.get("/staff").text
    assert client.get("/staff/gdpr/register").status_code == 403
    client.cookies.clear()
    signed_in(client, "office@example.org")
    assert 'href="/staff/gdpr/register"' in client.get("/staff").text
    page = html.unescape(client.get("/staff/gdpr/register").text)
    assert "Registre des activités de traitement" in page
    assert "École des Moulins" in page  # the controller, from the database
    assert "Paiements en ligne (demo)" in page  # a development box's demo provider
    assert "non mis en œuvre : aucun serveur SMTP configuré" in page
    assert "non mis en œuvre : aucune caméra installée" in page
    assert "puis 365 jours" in page


def test_the_page_follows_the_settings(
    tmp_path: Path, engine: Engine, session: Session, small_school: SmallSchool,
    clock: FakeClock,
) -> None:
    settings = Settings(environment="test", data_dir=tmp_path / "var", secret_key="t" * 40,
                        database_url=str(engine.url), smtp_host="smtp.ville.example.org",
                        smtp_port=587, payment_provider="none",
                        personal_data_retention_days=730, camera_view_retention_days=30,
                        gdpr_controller="Ville de Moulins, 1 place de la Mairie")
    session.add(Camera(school_id=small_school.school.id, classroom_id=small_school.rooms[0].id,  # type: ignore[arg-type]
                       name="CP", source_sealed="x", enabled=False))
    session.commit()
    with TestClient(create_app(settings, engine, clock=clock), follow_redirects=False) as c:
        signed_in(c, "admin@example.org")
        page = html.unescape(c.get("/staff/gdpr/register?lang=en").text)
    assert "Ville de Moulins, 1 place de la Mairie" in page
    assert "The mail server smtp.ville.example.org:587" in page
    assert "not in use: no payment provider configured" in page
    assert "Viewing log: 30 days" in page
    assert "then 730 days" in page
    assert "1 camera(s)" in page


def test_a_schools_office_reads_its_own_school_only(
    client: TestClient, session: Session, small_school: SmallSchool
) -> None:
    from tests import factories

    factories.school(session, slug="autre", name="Collège des Tilleuls")
    session.commit()
    signed_in(client, "office@example.org")
    page = html.unescape(client.get("/staff/gdpr/register").text)
    assert "École des Moulins" in page
    assert "Collège des Tilleuls" not in page
