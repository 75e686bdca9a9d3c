"""The administration pages are for each school's admins only: anonymous visitors sign in
first, everyone else gets a 403 (audited), and forms posted by them change nothing."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from school.models import Device, Role
from school.people import get_user_by_email, grant_role
from tests import factories
from tests.factories import SmallSchool
from tests.parent_portal.admin_pages import PAGES, audit_rows, page_url
from tests.parent_portal.conftest import csrf_from, signed_in

REFUSED = ["office@example.org", "cashier@example.org", "teacher@example.org",
           "parent@example.org"]


@pytest.mark.parametrize("page", PAGES)
def test_an_admin_opens_every_page(client: TestClient, small_school: SmallSchool,
                                   page: str) -> None:
    signed_in(client, "admin@example.org")
    response = client.get(page_url(small_school.school, page))
    assert response.status_code == 200, response.text
    assert small_school.school.name in response.text
    home = client.get("/admin")
    assert home.status_code == 200
    assert f'href="{page_url(small_school.school, page)}"' in home.text


@pytest.mark.parametrize("email", REFUSED)
def test_other_roles_are_refused_every_page(client: TestClient, session: Session,
                                            small_school: SmallSchool, email: str) -> None:
    signed_in(client, email)
    assert client.get("/admin").status_code == 403
    for page in PAGES:
        assert client.get(page_url(small_school.school, page)).status_code == 403
    denied = audit_rows(session, "access.denied")
    assert len(denied) == 1 + len(PAGES)
    assert {row.detail["page"] for row in denied} >= {
        page_url(small_school.school, p) for p in PAGES}


@pytest.mark.parametrize("email", REFUSED)
def test_forms_posted_by_other_roles_change_nothing(
    client: TestClient, session: Session, small_school: SmallSchool, email: str
) -> None:
    signed_in(client, email)
    token = csrf_from(_any_form(client))
    school = small_school.school
    posts = {
        f"{page_url(school, 'devices')}": {"name": "Intrus", "kind": "till"},
        f"{page_url(school, 'users')}": {"email": "new@example.org", "roles": "admin"},
        f"{page_url(school, 'users')}/{small_school.admin.id}/deactivate": {},
        f"{page_url(school, 'users')}/{small_school.office.id}/roles/grant": {"role": "admin"},
    }
    for url, data in posts.items():
        assert client.post(url, data={"csrf_token": token, **data}).status_code == 403
    session.rollback()
    assert session.exec(select(Device)).all() == []
    assert get_user_by_email(session, "new@example.org") is None
    assert audit_rows(session, "staff.add") == []
    assert audit_rows(session, "role.grant") == []
    assert len(audit_rows(session, "access.denied")) == len(posts)


def _any_form(client: TestClient) -> str:
    """A page of the signed-in user's that carries their anti-forgery token."""
    for url in ("/staff", "/parent"):
        page = client.get(url)
        if page.status_code == 200 and "csrf_token" in page.text:
            return page.text
    raise AssertionError("no page with a form")


def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient,
                                                small_school: SmallSchool) -> None:
    for url in ["/admin"] + [page_url(small_school.school, p) for p in PAGES]:
        response = client.get(url)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def test_another_schools_admin_is_refused(client: TestClient, session: Session,
                                          small_school: SmallSchool) -> None:
    other = factories.school(session, "autre", "École du Lac")
    boss = factories.user(session, "boss@example.org")
    grant_role(session=session, user=boss, school=other, role=Role.ADMIN)
    session.commit()
    signed_in(client, "boss@example.org")
    assert client.get(page_url(other, "users")).status_code == 200
    for page in PAGES:
        assert client.get(page_url(small_school.school, page)).status_code == 403
    home = client.get("/admin")
    assert "École du Lac" in home.text
    assert small_school.school.name not in home.text


def test_the_menu_shows_administration_to_admins_only(client: TestClient,
                                                      small_school: SmallSchool) -> None:
    signed_in(client, "admin@example.org")
    assert 'href="/admin"' in client.get("/staff").text
    client.cookies.clear()
    signed_in(client, "office@example.org")
    assert 'href="/admin"' not in client.get("/staff").text
