"""What parents and staff see: exactly their own children, their own school's classes."""

from __future__ import annotations

import re
from datetime import date

from sqlmodel import Session, select

from school.models import AuditEvent, ClassroomStaff, Guardianship, Role
from school.people import grant_role
from tests import factories
from tests.factories import SmallSchool
from tests.parent_portal.conftest import TestClient, signed_in


def child_names(html: str) -> list[str]:
    return re.findall(r'<a href="/parent/children/\d+">([^<]+)</a>', html)


def denied_events(session: Session) -> list[AuditEvent]:
    session.rollback()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == "access.denied")))


def test_parent_sees_exactly_their_two_children(client: TestClient,
                                                small_school: SmallSchool) -> None:
    page = signed_in(client, "parent@example.org").get("/parent")
    assert page.status_code == 200
    assert sorted(child_names(page.text)) == ["Jules Martin", "Léa Martin"]
    assert "Hugo" not in page.text
    assert "Bernard" not in page.text
    assert "arachide" in page.text  # Léa's allergy
    assert "CP" in page.text
    assert "CE1" in page.text


def test_other_parent_sees_only_hugo(client: TestClient, small_school: SmallSchool) -> None:
    page = signed_in(client, "other@example.org").get("/parent")
    assert child_names(page.text) == ["Hugo Bernard"]
    assert "Martin" not in page.text


def test_an_ended_guardianship_hides_the_child(client: TestClient, small_school: SmallSchool,
                                               session: Session) -> None:
    link = session.exec(select(Guardianship).where(
        Guardianship.pupil_id == small_school.pupils[2].id)).one()
    link.ends_on = date(2026, 11, 1)
    session.commit()
    page = signed_in(client, "parent@example.org").get("/parent")
    assert child_names(page.text) == ["Léa Martin"]


def test_child_page(client: TestClient, small_school: SmallSchool) -> None:
    lea = small_school.pupils[0]
    page = signed_in(client, "parent@example.org").get(f"/parent/children/{lea.id}")
    assert page.status_code == 200
    assert "Léa Martin" in page.text
    assert "arachide" in page.text
    assert "CP" in page.text


def test_another_familys_child_is_not_found_and_audited(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    hugo = small_school.pupils[1]
    page = signed_in(client, "parent@example.org").get(f"/parent/children/{hugo.id}")
    assert page.status_code == 404
    assert "Hugo" not in page.text
    missing = client.get("/parent/children/999999")
    assert missing.status_code == 404
    events = denied_events(session)
    assert [(e.actor_user_id, e.target_id) for e in events] == [
        (small_school.parent.id, str(hugo.id)), (small_school.parent.id, "999999"),
    ]


def test_parent_on_staff_pages_is_forbidden(client: TestClient,
                                            small_school: SmallSchool) -> None:
    signed_in(client, "parent@example.org")
    response = client.get("/staff")
    assert response.status_code == 403
    assert "Vous n'avez pas accès" in response.text.replace("&#39;", "'")
    assert client.get(f"/staff/classes/{small_school.rooms[0].id}").status_code == 403


def test_home_sends_each_user_to_their_page(client: TestClient, small_school: SmallSchool) -> None:
    assert client.get("/").headers["location"] == "/login?next=%2F"
    signed_in(client, "parent@example.org")
    assert client.get("/").headers["location"] == "/parent"
    client.cookies.clear()
    signed_in(client, "teacher@example.org")
    assert client.get("/").headers["location"] == "/staff"


def _teach(session: Session, school: SmallSchool, room: int = 0) -> None:
    """Make the school's teacher the teacher of `rooms[room]` (CP by default)."""
    session.add(ClassroomStaff(classroom_id=school.rooms[room].id or 0,
                               user_id=school.teacher.id or 0))
    school.pupils[0].tariff_band = "QF2"
    session.add(school.pupils[0])
    session.commit()


def test_staff_see_the_classes_their_role_lists(client: TestClient, session: Session,
                                                small_school: SmallSchool) -> None:
    """Office and admins every class; a teacher their own; a cashier none (docs/accounts.md)."""
    _teach(session, small_school)
    expected = {"teacher@example.org": [("CP", "2")], "cashier@example.org": [],
                "office@example.org": [("CE1", "1"), ("CP", "2")],
                "admin@example.org": [("CE1", "1"), ("CP", "2")]}
    for email, rows in expected.items():
        client.cookies.clear()
        page = signed_in(client, email).get("/staff")
        assert page.status_code == 200, email
        assert re.findall(r'<a href="/staff/classes/\d+">([^<]+)</a></td>\s*'
                          r'<td class="num">(\d+)</td>', page.text) == rows, email


def test_a_class_list_shows_each_role_its_fields(client: TestClient, session: Session,
                                                  small_school: SmallSchool) -> None:
    _teach(session, small_school)
    cp, ce1 = small_school.rooms
    page = signed_in(client, "office@example.org").get(f"/staff/classes/{cp.id}")
    assert page.status_code == 200
    for shown in ("Bernard Hugo", "Martin Léa", "arachide", "QF2"):
        assert shown in page.text
    assert "Jules" not in page.text
    client.cookies.clear()
    signed_in(client, "teacher@example.org")
    page = client.get(f"/staff/classes/{cp.id}")
    assert page.status_code == 200
    assert "Martin Léa" in page.text
    assert "arachide" in page.text  # allergies: the teacher looks after the class
    assert "QF2" not in page.text  # the tariff band: a proxy for the family's income
    assert f"/staff/pupils/{small_school.pupils[0].id}/money" not in page.text
    assert client.get(f"/staff/classes/{ce1.id}").status_code == 404  # not their class
    client.cookies.clear()
    signed_in(client, "cashier@example.org")
    assert client.get(f"/staff/classes/{cp.id}").status_code == 404
    assert client.get(f"/staff/pupils/{small_school.pupils[0].id}/statement").status_code == 404
    assert client.get(f"/staff/pupils/{small_school.pupils[0].id}/money").status_code == 404


def test_staff_who_are_parents_get_a_link_to_their_children(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    grant_role(session=session, user=small_school.parent, school=small_school.school,
               role=Role.TEACHER)
    session.commit()
    signed_in(client, "parent@example.org")
    assert client.get("/").headers["location"] == "/staff"
    assert 'href="/parent"' in client.get("/staff").text
    assert client.get("/parent").status_code == 200


def _classes_listed(html: str) -> list[str]:
    # The classes listed, not the page's text: a random anti-forgery token may hold "CP".
    return re.findall(r'<a href="/staff/classes/\d+">([^<]*)</a>', html)


def test_staff_see_only_their_own_school(client: TestClient, small_school: SmallSchool,
                                         session: Session) -> None:
    other = factories.school(session, slug="autre", name="École du Pont")
    room = factories.classroom(session, other, "CM2")
    factories.pupil(session, room, "Zoé", "Petit")
    head = factories.user(session, "head@autre.example.org")
    grant_role(session=session, user=head, school=other, role=Role.ADMIN)
    session.commit()

    page = signed_in(client, "teacher@example.org").get("/staff")
    assert "CM2" not in _classes_listed(page.text)
    assert "École du Pont" not in page.text
    assert client.get(f"/staff/classes/{room.id}").status_code == 404
    assert [e.target_type for e in denied_events(session)] == ["classroom"]

    client.cookies.clear()
    page = signed_in(client, "head@autre.example.org").get("/staff")
    assert _classes_listed(page.text) == ["CM2"]
    assert client.get(f"/staff/classes/{small_school.rooms[0].id}").status_code == 404


def test_pages_escape_what_people_typed(client: TestClient, small_school: SmallSchool,
                                        session: Session) -> None:
    lea = small_school.pupils[0]
    lea.allergies = "<script>alert(1)</script>"
    session.add(lea)
    session.commit()
    page = signed_in(client, "parent@example.org").get("/parent")
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text


def test_today_is_the_schools_day_not_utcs(client: TestClient, small_school: SmallSchool,
                                           session: Session, clock) -> None:
    """At 00:30 in Paris on 1 December it is still 30 November in UTC; a guardianship
    starting on 1 December already counts."""
    from datetime import UTC, datetime

    hugo = small_school.pupils[1]
    session.add(Guardianship(user_id=small_school.parent.id, pupil_id=hugo.id,
                             starts_on=date(2026, 12, 1)))
    session.commit()
    clock.now = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    page = signed_in(client, "parent@example.org").get("/parent")
    assert "Hugo Bernard" in child_names(page.text)
    clock.now = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)  # 23:30 on 30 November in Paris
    client.cookies.clear()
    page = signed_in(client, "parent@example.org").get("/parent")
    assert "Hugo Bernard" not in child_names(page.text)
