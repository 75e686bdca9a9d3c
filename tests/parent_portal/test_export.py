"""A parent's data export: their children, balances, transactions and viewing log, as JSON
and as a page, and nothing at all about another family of the same class."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from school.models import AuditEvent, Guardianship
from school.people import end_guardianship
from tests.conftest import FakeClock
from tests.gdpr_world import BERNARD_CENTS, BERNARD_TEXTS, LEA_UID, World, build
from tests.parent_portal.conftest import TestClient, signed_in

MARTIN_TEXTS = ("Léa", "Jules", "Anne", "parent@example.org", LEA_UID, "04A1…F6", "chèque 4411",
                "198.51.100.5", "AnneBrowser", "31,50")


@pytest.fixture
def world(engine: Engine, session: Session, clock: FakeClock) -> World:
    return build(engine, session, clock)


def _numbers(value: Any) -> Iterator[int]:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


def _export(client: TestClient, email: str) -> tuple[dict[str, Any], str, str]:
    signed_in(client, email)
    download = client.get("/account/export.json")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/json"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["cache-control"] == "no-store"
    page = client.get("/account/export")
    assert page.status_code == 200
    return download.json(), download.text, html.unescape(page.text)


def test_the_export_holds_the_family_and_nothing_of_another(
    client: TestClient, world: World, session: Session
) -> None:
    data, text, page = _export(client, "parent@example.org")
    assert data["you"]["email"] == "parent@example.org"
    assert [c["pupil"]["first_name"] for c in data["children"]] == ["Jules", "Léa"]
    lea = data["children"][1]
    assert lea["pupil"]["allergies"] == "arachide"
    assert lea["pupil"]["class"] == "CP"
    assert lea["other_guardians"] == [{"name": "Marc Martin", "relation": "père"}]
    assert lea["cards"] == [{"kind": "uid", "status": "active", "uid": "04A1…F6",
                             "issued_at": "2026-11-24T11:30:00+01:00",
                             "status_changed_at": "2026-11-24T11:30:00+01:00"}]
    assert lea["account"]["balance_cents"] == 3150
    assert lea["account"]["balance"] == "31,50\u00a0€"
    lines = [(t["kind"], t["amount_cents"], t["balance_after_cents"], t["receipt"], t["by"])
             for t in lea["transactions"]]
    assert lines == [("topup", 2000, 2000, 1, "Office"), ("topup", 1500, 3500, None, "Anne Martin"),
                     ("meal", -350, 3150, None, "Till 1")]
    assert lea["transactions"][0]["occurred_at"] == "2026-11-24T11:30:00+01:00"  # school time
    assert lea["receipts"][0]["reference"] == "chèque 4411"
    assert [m["price_cents"] for m in lea["meals"]] == [350]
    assert lea["limits"]["daily_limit_cents"] == 600
    assert [(p["pupil"], p["amount_cents"]) for p in data["online_payments"]] == [
        ("Léa Martin", 1500)]
    assert [(v["camera"], v["ip"]) for v in data["camera_views"]] == [
        ("Caméra CP", "198.51.100.5")] * 2
    assert [c["classroom"] for c in data["camera_consents"]] == ["CP"]
    assert next(s["user_agent"] for s in data["sessions"]) == "AnneBrowser/2.0"
    # Never a secret, a full card number, a co-guardian's address or another family.
    for secret in ("password", "token", "csrf"):
        assert secret not in text
    for secret in ("$argon2", LEA_UID, "marc@example.org"):
        assert secret not in text
        assert secret not in page
    for other in BERNARD_TEXTS:
        assert other not in text, other
        assert other not in page, other
    assert not set(_numbers(data)) & set(BERNARD_CENTS)
    # The page shows the same, readably.
    assert "Léa Martin" in page
    assert "31,50\u00a0€" in page
    assert "2026-11-24 11:30" in page
    exports = session.exec(select(AuditEvent).where(AuditEvent.action == "gdpr.export")
                           .order_by(col(AuditEvent.id))).all()
    assert [(e.actor_user_id, e.detail["format"], e.detail["children"]) for e in exports] == [
        (world.s.parent.id, "json", 2), (world.s.parent.id, "html", 2)]


def test_the_other_familys_export_holds_nothing_of_the_first(
    client: TestClient, world: World
) -> None:
    data, text, page = _export(client, "other@example.org")
    assert [c["pupil"]["first_name"] for c in data["children"]] == ["Hugo"]
    hugo = data["children"][0]
    assert hugo["account"]["balance_cents"] == 4778
    assert hugo["alerts"][0]["threshold_cents"] == 500
    assert data["emails"][0]["subject"] == "Solde bas : Hugo"
    for other in MARTIN_TEXTS:
        assert other not in text, other
        assert other not in page, other


def test_a_child_is_left_out_once_custody_ended_but_kept_after_leaving(
    client: TestClient, world: World, session: Session
) -> None:
    session.rollback()
    link = session.exec(select(Guardianship).where(Guardianship.user_id == world.marc.id,
                                                   Guardianship.pupil_id == world.theo.id)).one()
    end_guardianship(session=session, link=link, ends_on=date(2026, 10, 1))
    session.commit()
    data, text, _ = _export(client, "marc@example.org")
    assert [c["pupil"]["first_name"] for c in data["children"]] == ["Léa"]
    assert [(g["pupil"], g["ends_on"]) for g in data["guardianships"]] == [
        ("Léa Martin", None), ("Théo Durand", "2026-10-01")]
    assert "kiwi" not in text  # Théo's record is no longer this user's to read
    assert [o["name"] for o in data["children"][0]["other_guardians"]] == ["Anne Martin"]
    assert "parent@example.org" not in text


def test_signing_in_is_required(client: TestClient) -> None:
    assert client.get("/account/export.json", headers={"accept": "application/json"}
                      ).status_code == 401
    assert client.get("/account/export").status_code == 303
