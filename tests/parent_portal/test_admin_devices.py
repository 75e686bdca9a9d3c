"""Tills and camera nodes: adding one shows its token once; revoking one shuts its token
out of the till API at once."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from school.models import Device, DeviceKind
from school.security import token_digest
from tests import factories
from tests.factories import SmallSchool
from tests.parent_portal.admin_pages import audit_rows, page_url
from tests.parent_portal.conftest import csrf_from, signed_in
from tests.parent_portal.forms import submit

TOKEN = re.compile(r'id="device-token"[^>]*value="([A-Za-z0-9_-]{43})"')


def devices_url(small: SmallSchool) -> str:
    return page_url(small.school, "devices")


def add(client: TestClient, small: SmallSchool, name: str, kind: str = "till") -> str:
    """Add a device through the page; its token, read off the answer."""
    response = submit(client, devices_url(small), devices_url(small), name=name, kind=kind)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    found = TOKEN.search(response.text)
    assert found is not None
    return found.group(1)


def snapshot(client: TestClient, token: str) -> int:
    return client.get("/api/till/snapshot",
                      headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_new_tills_token_is_shown_once_and_works(client: TestClient, session: Session,
                                                   small_school: SmallSchool) -> None:
    signed_in(client, "admin@example.org")
    token = add(client, small_school, "Cantine  1")
    session.rollback()
    [device] = session.exec(select(Device)).all()
    assert (device.name, device.kind) == ("Cantine 1", DeviceKind.TILL)
    assert device.token_sha256 == token_digest(token)  # only its digest is kept
    assert token not in str(device.model_dump())
    listing = client.get(devices_url(small_school))
    assert "Cantine 1" in listing.text
    assert token not in listing.text
    assert "jamais" in listing.text  # not seen yet
    assert snapshot(client, token) == 200
    assert "jamais" not in client.get(devices_url(small_school)).text  # seen now
    [row] = audit_rows(session, "device.add")
    assert row.actor_user_id == small_school.admin.id
    assert row.school_id == small_school.school.id
    assert row.detail == {"kind": "till", "name": "Cantine 1"}
    assert token not in str(row.detail)


def test_a_revoked_tills_token_is_refused_at_once(client: TestClient, session: Session,
                                                  small_school: SmallSchool) -> None:
    signed_in(client, "admin@example.org")
    token = add(client, small_school, "Cantine")
    keep = add(client, small_school, "Bureau")
    assert snapshot(client, token) == 200
    session.rollback()
    device = session.exec(select(Device).where(Device.name == "Cantine")).one()
    url = f"{devices_url(small_school)}/{device.id}/revoke"
    response = submit(client, devices_url(small_school), url)
    assert response.status_code == 303
    assert snapshot(client, token) == 401
    tap = client.post("/api/till/taps", headers={"Authorization": f"Bearer {token}"},
                      json={"tap_id": "7d4f2f4e-0d1e-4a35-9f55-0c1e2b3a4d5e",
                            "read_at": "2026-11-24T10:30:00+00:00", "card": {"uid": "04A1B2C3"}})
    assert tap.status_code == 401
    assert snapshot(client, keep) == 200  # the other till carries on
    page = unescape(client.get(response.headers["location"]).text)
    assert "Appareil révoqué" in page
    assert "Révoqué le" in page
    [row] = audit_rows(session, "device.revoke")
    assert row.target_id == str(device.id)
    assert row.actor_user_id == small_school.admin.id


def test_a_camera_node_can_be_added_too(client: TestClient, session: Session,
                                        small_school: SmallSchool) -> None:
    signed_in(client, "admin@example.org")
    token = add(client, small_school, "Nœud couloir", kind="camera_node")
    session.rollback()
    device = session.exec(select(Device)).one()
    assert device.kind is DeviceKind.CAMERA_NODE
    assert snapshot(client, token) == 401  # a camera node is no till
    assert "Nœud caméra" in client.get(devices_url(small_school)).text


@pytest.mark.parametrize(("name", "kind", "message"), [
    ("", "till", "Donnez un nom"),
    ("x" * 101, "till", "Donnez un nom"),
    ("Caisse", "printer", "Choisissez le type"),
    ("Existing", "till", "porte déjà ce nom"),
])
def test_a_bad_device_form_adds_nothing(client: TestClient, session: Session,
                                        small_school: SmallSchool, name: str, kind: str,
                                        message: str) -> None:
    factories.till(session, small_school.school, "Existing")
    signed_in(client, "admin@example.org")
    response = submit(client, devices_url(small_school), devices_url(small_school),
                      name=name, kind=kind)
    assert response.status_code == 400
    assert message in unescape(response.text)
    assert TOKEN.search(response.text) is None
    session.rollback()
    assert [d.name for d in session.exec(select(Device)).all()] == ["Existing"]
    assert len(audit_rows(session, "device.add")) == 1  # the factory's own


def test_another_schools_device_cannot_be_revoked(client: TestClient, session: Session,
                                                  small_school: SmallSchool) -> None:
    other = factories.school(session, "autre", "École du Lac")
    theirs = factories.till(session, other, "Leur caisse")
    signed_in(client, "admin@example.org")
    url = f"{devices_url(small_school)}/{theirs.id}/revoke"
    token = csrf_from(client.get(devices_url(small_school)).text)
    assert client.post(url, data={"csrf_token": token}).status_code == 404
    session.rollback()
    assert session.get(Device, theirs.id).revoked_at is None  # type: ignore[union-attr]
    assert "Leur caisse" not in client.get(devices_url(small_school)).text
