"""The audit log page: the school's rows, newest first, filtered by the school's dates,
actor, action and target type, and paged. It only reads."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlmodel import Session
from starlette.testclient import TestClient

from school.models import AuditEvent
from tests import factories
from tests.factories import SmallSchool
from tests.parent_portal.admin_pages import page_url
from tests.parent_portal.conftest import signed_in

ACTION_CELL = re.compile(r"<td><code>([a-z0-9_.]+)</code></td>")


def event(session: Session, small: SmallSchool, action: str, at: datetime, *,
          actor: int | None = None, target_type: str = "", school_id: int | None = -1,
          **detail: object) -> None:
    session.add(AuditEvent(action=action, at=at, actor_user_id=actor, target_type=target_type,
                           school_id=small.school.id if school_id == -1 else school_id,
                           detail=detail))


def actions(client: TestClient, small: SmallSchool, query: str = "") -> list[str]:
    response = client.get(page_url(small.school, "audit") + query)
    assert response.status_code == 200, response.text
    return ACTION_CELL.findall(response.text)


def test_filters_by_the_schools_days_actor_action_and_target(
    client: TestClient, session: Session, small_school: SmallSchool
) -> None:
    office, admin = small_school.office.id, small_school.admin.id
    # 23:30 UTC on the 23rd is already the 24th in Paris; 22:30 UTC is still the 23rd.
    event(session, small_school, "device.add", datetime(2026, 11, 23, 23, 30, tzinfo=UTC),
          actor=admin, target_type="device")
    event(session, small_school, "device.revoke", datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
          actor=office, target_type="device")
    event(session, small_school, "devices.other", datetime(2026, 11, 24, 9, 5, tzinfo=UTC),
          actor=office, target_type="school")
    event(session, small_school, "role.grant", datetime(2026, 11, 23, 22, 30, tzinfo=UTC),
          actor=admin, target_type="user")
    session.commit()
    signed_in(client, "admin@example.org")
    # Sign-ins are stamped with the real time, after these.
    everything = [a for a in actions(client, small_school) if not a.startswith("login.")]
    assert everything == ["devices.other", "device.revoke", "device.add", "role.grant"]
    assert actions(client, small_school, "?from=2026-11-24&to=2026-11-24")[-2:] == [
        "device.revoke", "device.add"]
    assert "role.grant" not in actions(client, small_school, "?from=2026-11-24")
    assert actions(client, small_school, "?to=2026-11-23") == ["role.grant"]
    assert actions(client, small_school, "?actor=OFFICE%40example") == [
        "devices.other", "device.revoke"]
    assert actions(client, small_school, "?action=device") == ["device.revoke", "device.add"]
    assert actions(client, small_school, "?action=device.add") == ["device.add"]
    assert actions(client, small_school, "?target_type=user") == ["role.grant"]
    assert actions(client, small_school, "?actor=%25") == []  # a wildcard is just a character
    page = client.get(page_url(small_school.school, "audit") + "?actor=office%40example.org")
    assert 'value="office@example.org"' in page.text  # the filters stay filled in
    assert "24/11/2026 00:30" in client.get(page_url(small_school.school, "audit")).text


def test_pages_of_fifty_newest_first(client: TestClient, session: Session,
                                     small_school: SmallSchool) -> None:
    start = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
    for n in range(120):
        event(session, small_school, f"test.n{n:03d}", start + timedelta(minutes=n),
              actor=small_school.office.id, target_type="thing")
    session.commit()
    signed_in(client, "admin@example.org")
    query = "?target_type=thing"
    first = client.get(page_url(small_school.school, "audit") + query).text
    assert ACTION_CELL.findall(first)[0] == "test.n119"
    assert len(ACTION_CELL.findall(first)) == 50
    assert 'href="?target_type=thing&amp;page=2" rel="next"' in first
    assert 'rel="prev"' not in first
    third = client.get(page_url(small_school.school, "audit") + query + "&page=3").text
    assert ACTION_CELL.findall(third)[-1] == "test.n000"
    assert len(ACTION_CELL.findall(third)) == 20
    assert 'rel="next"' not in third
    assert 'href="?target_type=thing&amp;page=2" rel="prev"' in third


def test_a_bad_date_is_a_clear_error(client: TestClient, small_school: SmallSchool) -> None:
    signed_in(client, "admin@example.org")
    response = client.get(page_url(small_school.school, "audit") + "?from=24/11/2026")
    assert response.status_code == 400
    assert "Date non valide" in response.text


def test_only_this_schools_rows_are_shown(client: TestClient, session: Session,
                                          small_school: SmallSchool) -> None:
    at = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    event(session, small_school, "mine.one", at)
    event(session, small_school, "nobodys.one", at, school_id=None)
    session.commit()
    signed_in(client, "admin@example.org")
    shown = actions(client, small_school)
    # With one school, rows naming no school (sign-ins...) can only be about it.
    assert {"mine.one", "nobodys.one"} <= set(shown)
    assert "login.success" in shown
    other = factories.school(session, "autre", "École du Lac")
    event(session, small_school, "theirs.one", at, school_id=other.id)
    session.commit()
    shown = actions(client, small_school)
    assert "mine.one" in shown
    assert "theirs.one" not in shown
    assert "nobodys.one" not in shown


def test_the_log_cannot_be_written_through_the_page(client: TestClient,
                                                    small_school: SmallSchool) -> None:
    signed_in(client, "admin@example.org")
    page = client.get(page_url(small_school.school, "audit")).text
    assert 'method="post"' not in page.split("<main")[1]
    assert client.post(page_url(small_school.school, "audit")).status_code in (403, 405)
