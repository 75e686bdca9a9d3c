"""Staff and roles: adding a member of staff by invitation, granting and revoking roles,
deactivating, and the guards that keep every school with an admin."""

from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi import FastAPI
from httpx2 import Response
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from cardpay import outbox
from cardpay.account_models import OutboxEmail
from cardpay.outbox import SmtpConfig
from parent_portal.app import create_app
from school.db import immediate_session
from school.models import Role, RoleGrant, User, WebSession
from school.people import get_user_by_email, grant_role
from school.settings import Settings
from tests import factories
from tests.conftest import FakeClock
from tests.factories import SmallSchool
from tests.parent_portal.admin_pages import audit_rows, page_url
from tests.parent_portal.conftest import csrf_from, login, signed_in
from tests.parent_portal.forms import hidden_fields, submit
from tests.smtp import Inbox

LINK = re.compile(r"https?://[^\s<\"]+/welcome/[0-9]+\.[0-9]+\.[0-9]+\.[A-Za-z0-9_-]+")
NEW_PASSWORD = "a brand new password"


def users_url(small: SmallSchool) -> str:
    return page_url(small.school, "users")


def add(client: TestClient, small: SmallSchool, **fields: object) -> Response:
    page = client.get(users_url(small))
    data = {**hidden_fields(page.text, users_url(small)), **fields}
    return client.post(users_url(small), data=data)


def post(client: TestClient, small: SmallSchool, url: str, **fields: str) -> Response:
    """POST to `url` with the anti-forgery token of the staff page, as a forged or stale
    form would."""
    token = csrf_from(client.get(users_url(small)).text)
    return client.post(url, data={"csrf_token": token, **fields})


def roles_of(session: Session, email: str, school_id: int | None) -> set[str]:
    session.rollback()
    user = get_user_by_email(session, email)
    assert user is not None
    return {str(r) for r in session.exec(select(RoleGrant.role).where(
        RoleGrant.user_id == user.id, RoleGrant.school_id == school_id)).all()}


def test_the_list_shows_each_member_with_their_roles(client: TestClient,
                                                     small_school: SmallSchool) -> None:
    signed_in(client, "admin@example.org")
    page = client.get(users_url(small_school)).text
    for role in ("teacher", "cashier", "office", "admin"):
        assert f"{role}@example.org" in page
    assert "parent@example.org" not in page  # parents are not staff
    office_row = page[page.index(f'id="user-{small_school.office.id}"'):]
    office_row = office_row[:office_row.index("</tr>")]
    assert "Secrétariat" in office_row
    assert "Administrateur" not in office_row.split("<select")[0]


def test_adding_a_member_creates_them_without_a_password_and_shows_the_link_once(
    client: TestClient, session: Session, small_school: SmallSchool, clock: FakeClock
) -> None:
    signed_in(client, "admin@example.org")
    response = add(client, small_school, email=" Zoe.Blanc@Example.org ",
                   full_name="Zoé Blanc", roles=["cashier", "teacher"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    link = LINK.search(response.text)
    assert link is not None, "no mail server: the admin is shown the link"
    session.rollback()
    user = get_user_by_email(session, "zoe.blanc@example.org")
    assert user is not None
    assert user.password_hash is None
    assert roles_of(session, "zoe.blanc@example.org", small_school.school.id) == {
        "cashier", "teacher"}
    [added] = audit_rows(session, "staff.add")
    assert added.actor_user_id == small_school.admin.id
    assert added.school_id == small_school.school.id
    assert added.detail["roles"] == ["teacher", "cashier"]
    assert added.detail["new_account"] is True
    [invited] = audit_rows(session, "user.invite")
    assert invited.detail == {"emailed": False}
    # The list afterwards says who is waiting, and never shows the link again.
    listing = client.get(users_url(small_school)).text
    assert "Invité, sans mot de passe" in listing
    assert link.group(0) not in listing

    # The link lets Zoé choose her password, once; then she signs in with it.
    path = "/welcome/" + link.group(0).split("/welcome/")[1]
    client.cookies.clear()
    form = client.get(path)
    assert form.status_code == 200
    assert form.headers["referrer-policy"] == "no-referrer"
    done = submit(client, path, path, password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert done.status_code == 200
    assert "Mot de passe enregistré" in unescape(done.text)
    assert client.get(path).status_code == 400  # used
    assert login(client, "zoe.blanc@example.org", NEW_PASSWORD).status_code == 303
    assert client.get("/staff").status_code == 200
    [accepted] = audit_rows(session, "user.invitation_accepted")
    assert accepted.actor_user_id == user.id


def test_the_invitation_is_e_mailed_when_a_mail_server_is_set(
    settings: Settings, engine: Engine, clock: FakeClock, session: Session,
    small_school: SmallSchool, smtp: Inbox
) -> None:
    configured = settings.model_copy(update={"smtp_host": smtp.host, "smtp_port": smtp.port,
                                             "public_url": "https://cantine.example.org"})
    app: FastAPI = create_app(configured, engine, clock=clock)
    client = TestClient(app, follow_redirects=False)  # no lifespan: drained below
    signed_in(client, "admin@example.org")
    response = add(client, small_school, email="new@example.org", roles=["office"])
    assert response.status_code == 200
    assert LINK.search(response.text) is None  # the admin never sees it
    assert "new@example.org" in unescape(response.text)
    sent = outbox.drain(lambda: immediate_session(engine),
                        SmtpConfig(host=smtp.host, port=smtp.port), clock=clock)
    assert sent == 1
    [(to, message)] = smtp.received
    assert to == ["new@example.org"]
    body = message.get_content()
    link = LINK.search(body)
    assert link is not None
    assert link.group(0).startswith("https://cantine.example.org/welcome/")
    assert [r.detail for r in audit_rows(session, "user.invite")] == [{"emailed": True}]


def test_an_invitation_expires_and_cannot_be_forged(
    client: TestClient, session: Session, small_school: SmallSchool, clock: FakeClock
) -> None:
    signed_in(client, "admin@example.org")
    link = LINK.search(add(client, small_school, email="late@example.org",
                           roles=["teacher"]).text)
    assert link is not None
    path = "/welcome/" + link.group(0).split("/welcome/")[1]
    client.cookies.clear()
    user_id, school_id, expires, mac = path.removeprefix("/welcome/").split(".")
    forged = f"/welcome/{small_school.admin.id}.{school_id}.{expires}.{mac}"
    assert client.get(forged).status_code == 400
    assert client.get(f"/welcome/{user_id}.{school_id}.{int(expires) + 86400}.{mac}"
                      ).status_code == 400
    clock.advance(days=8)
    assert client.get(path).status_code == 400
    session.rollback()
    assert get_user_by_email(session, "late@example.org").password_hash is None  # type: ignore[union-attr]


def test_a_weak_or_mismatched_password_sets_nothing(
    client: TestClient, session: Session, small_school: SmallSchool
) -> None:
    signed_in(client, "admin@example.org")
    link = LINK.search(add(client, small_school, email="z@example.org", roles=["teacher"]).text)
    assert link is not None
    path = "/welcome/" + link.group(0).split("/welcome/")[1]
    client.cookies.clear()
    short = submit(client, path, path, password="short", confirm="short")
    assert short.status_code == 400
    assert "au moins 10 caractères" in unescape(short.text)
    common = submit(client, path, path, password="motdepasse", confirm="motdepasse")
    assert "plus utilisés" in unescape(common.text)
    differ = submit(client, path, path, password=NEW_PASSWORD, confirm=NEW_PASSWORD + "!")
    assert differ.status_code == 400
    assert "pas identiques" in unescape(differ.text)
    session.rollback()
    assert get_user_by_email(session, "z@example.org").password_hash is None  # type: ignore[union-attr]
    assert client.get(path).status_code == 200  # still usable


@pytest.mark.parametrize(("fields", "message"), [
    ({"email": "not an address", "roles": ["teacher"]}, "Adresse e-mail non valide"),
    ({"email": "ok@example.org"}, "Choisissez au moins un rôle"),
    ({"email": "ok@example.org", "roles": ["parent"]}, "Ce rôle n'existe pas"),
    ({"email": "ok@example.org", "roles": ["superuser"]}, "Ce rôle n'existe pas"),
])
def test_a_bad_add_form_changes_nothing(client: TestClient, session: Session,
                                        small_school: SmallSchool, fields: dict[str, object],
                                        message: str) -> None:
    signed_in(client, "admin@example.org")
    response = add(client, small_school, full_name="Someone", **fields)
    assert response.status_code == 400
    assert message in unescape(response.text)
    assert 'value="Someone"' in response.text  # the form comes back as typed
    session.rollback()
    assert get_user_by_email(session, "ok@example.org") is None
    assert audit_rows(session, "staff.add") == []
    assert session.exec(select(OutboxEmail)).all() == []


def test_adding_an_existing_member_grants_the_roles_without_an_invitation(
    client: TestClient, session: Session, small_school: SmallSchool
) -> None:
    signed_in(client, "admin@example.org")
    response = add(client, small_school, email="cashier@example.org", roles=["teacher"])
    assert response.status_code == 200
    assert "avait déjà un compte" in unescape(response.text)
    assert LINK.search(response.text) is None
    assert roles_of(session, "cashier@example.org", small_school.school.id) == {
        "cashier", "teacher"}
    assert audit_rows(session, "user.invite") == []


def _other_school_admin(session: Session) -> tuple[object, User]:
    other = factories.school(session, "autre", "École du Lac")
    head = factories.user(session, "head@lac.example.org", name="Directrice du Lac")
    grant_role(session=session, user=head, school=other, role=Role.ADMIN)
    session.commit()
    return other, head


def _shown(page: str) -> str:
    """The page as the admin reads it, without what differs between any two answers."""
    text = re.sub(r'name="csrf_token" value="[^"]+"', "", page)
    return re.sub(r'<code class="secret" id="invite-link">[^<]*</code>', "", text)


def _deactivate(client: TestClient, users: str, user_id: int | None) -> Response:
    token = csrf_from(client.get(users).text)
    return client.post(f"{users}/{user_id}/deactivate", data={"csrf_token": token})


def test_another_schools_admin_learns_nothing_about_an_existing_address(
    client: TestClient, session: Session, small_school: SmallSchool
) -> None:
    """The review's case: school 2's admin invited a school-1 parent as cashier, saw her
    name, and could then lock her out."""
    other, _ = _other_school_admin(session)
    signed_in(client, "head@lac.example.org")
    url = f"/admin/schools/{other.id}/users"  # type: ignore[attr-defined]
    fields = {**hidden_fields(client.get(url).text, url), "full_name": "Quelqu'un",
              "roles": ["cashier"]}
    existing = client.post(url, data={**fields, "email": "parent@example.org"})
    unknown = client.post(url, data={**fields, "email": "nobody@example.org"})
    assert existing.status_code == unknown.status_code == 200
    assert "Anne Martin" not in existing.text  # her real name
    assert _shown(existing.text).replace("parent@example.org", "X") == \
        _shown(unknown.text).replace("nobody@example.org", "X")
    # Nothing changed on her account: no role, no member row for the admin to act on.
    session.rollback()
    assert roles_of(session, "parent@example.org", other.id) == set()  # type: ignore[attr-defined]
    assert "parent@example.org" not in client.get(url).text
    parent_id = small_school.parent.id
    assert _deactivate(client, url, parent_id).status_code == 404
    session.rollback()
    assert session.get(User, parent_id).is_active is True  # type: ignore[union-attr]

    # She gets an e-mail, and accepts the role herself, signed in.
    mail = session.exec(select(OutboxEmail).where(
        OutboxEmail.to_address == "parent@example.org")).one()
    path = re.search(r"/staff/offers/[A-Za-z0-9_-]+", mail.body)
    assert path is not None
    client.cookies.clear()
    assert client.get(path.group(0)).status_code == 303  # to the sign-in page
    signed_in(client, "other@example.org")
    assert client.get(path.group(0)).status_code == 404  # not hers
    client.cookies.clear()
    signed_in(client, "parent@example.org")
    offer = client.get(path.group(0))
    assert offer.status_code == 200
    assert "École du Lac" in unescape(offer.text)
    assert submit(client, path.group(0), path.group(0)).status_code == 200
    session.rollback()
    assert roles_of(session, "parent@example.org", other.id) == {"cashier"}  # type: ignore[attr-defined]
    assert client.get(path.group(0)).status_code == 404  # used

    # Now a cashier of school 2, she is still a parent of school 1: not theirs to lock out.
    client.cookies.clear()
    signed_in(client, "head@lac.example.org")
    refused = _deactivate(client, url, parent_id)
    assert refused.status_code == 409
    session.rollback()
    assert session.get(User, parent_id).is_active is True  # type: ignore[union-attr]


def test_granting_and_revoking_roles_is_audited_with_before_and_after(
    client: TestClient, session: Session, small_school: SmallSchool
) -> None:
    signed_in(client, "admin@example.org")
    base = f"{users_url(small_school)}/{small_school.cashier.id}/roles"
    response = submit(client, users_url(small_school), f"{base}/grant", role="office")
    assert response.status_code == 303
    assert roles_of(session, "cashier@example.org", small_school.school.id) == {
        "cashier", "office"}
    assert "Rôle ajouté" in client.get(response.headers["location"]).text
    response = submit(client, users_url(small_school), f"{base}/revoke", role="cashier")
    assert response.status_code == 303
    assert roles_of(session, "cashier@example.org", small_school.school.id) == {"office"}
    [granted] = audit_rows(session, "role.grant")
    assert granted.detail == {"role": "office", "before": ["cashier"],
                              "after": ["cashier", "office"]}
    assert granted.target_id == str(small_school.cashier.id)
    [revoked] = audit_rows(session, "role.revoke")
    assert revoked.detail == {"role": "cashier", "before": ["cashier", "office"],
                              "after": ["office"]}
    assert revoked.actor_user_id == small_school.admin.id


def test_an_admin_cannot_give_up_their_last_admin_role(
    client: TestClient, session: Session, small_school: SmallSchool
) -> None:
    signed_in(client, "admin@example.org")
    own = f"{users_url(small_school)}/{small_school.admin.id}/roles/revoke"
    response = submit(client, users_url(small_school), own, role="admin")
    assert response.status_code == 409
    assert "dernier rôle d'administrateur" in unescape(response.text)
    assert roles_of(session, "admin@example.org", small_school.school.id) == {"admin"}
    assert audit_rows(session, "role.revoke") == []


def test_with_a_second_admin_one_may_step_down_but_the_school_keeps_one(
    client: TestClient, session: Session, small_school: SmallSchool
) -> None:
    school = small_school.school
    grant_role(session=session, user=small_school.office, school=school, role=Role.ADMIN)
    other = factories.school(session, "autre", "École du Lac")
    grant_role(session=session, user=small_school.admin, school=other, role=Role.ADMIN)
    session.commit()
    signed_in(client, "admin@example.org")
    # The office admin may lose the role: admin@ remains.
    theirs = f"{users_url(small_school)}/{small_school.office.id}/roles/revoke"
    assert submit(client, users_url(small_school), theirs, role="admin").status_code == 303
    # admin@ is also admin elsewhere, yet may not leave this school without an admin.
    own = f"{users_url(small_school)}/{small_school.admin.id}/roles/revoke"
    response = submit(client, users_url(small_school), own, role="admin")
    assert response.status_code == 409
    assert "plus aucun administrateur actif" in unescape(response.text)
    assert roles_of(session, "admin@example.org", school.id) == {"admin"}


def test_deactivating_ends_the_members_sessions_at_once(
    client: TestClient, app: FastAPI, session: Session, small_school: SmallSchool
) -> None:
    with TestClient(app, follow_redirects=False) as teacher:
        signed_in(teacher, "teacher@example.org")
        assert teacher.get("/staff").status_code == 200
        signed_in(client, "admin@example.org")
        url = f"{users_url(small_school)}/{small_school.teacher.id}/deactivate"
        response = submit(client, users_url(small_school), url)
        assert response.status_code == 303
        assert "ses sessions ont pris fin" in client.get(response.headers["location"]).text
        assert teacher.get("/staff").status_code == 303  # to the sign-in page
        assert login(teacher, "teacher@example.org").status_code == 401
    session.rollback()
    assert session.get(User, small_school.teacher.id).is_active is False  # type: ignore[union-attr]
    live = session.exec(select(WebSession).where(
        WebSession.user_id == small_school.teacher.id,
        WebSession.revoked_at == None)).all()  # noqa: E711
    assert live == []
    [row] = audit_rows(session, "user.deactivate")
    assert row.detail["before"] == {"is_active": True}
    assert row.detail["after"] == {"is_active": False}
    assert row.detail["sessions_ended"] == 1
    # Reactivation lets them in again.
    url = f"{users_url(small_school)}/{small_school.teacher.id}/activate"
    assert submit(client, users_url(small_school), url).status_code == 303
    assert len(audit_rows(session, "user.activate")) == 1
    assert login(TestClient(app, follow_redirects=False), "teacher@example.org"
                 ).status_code == 303


def test_an_admin_cannot_deactivate_themselves(client: TestClient, session: Session,
                                               small_school: SmallSchool) -> None:
    signed_in(client, "admin@example.org")
    page = client.get(users_url(small_school)).text
    own = f"{users_url(small_school)}/{small_school.admin.id}/deactivate"
    assert own not in page  # no button for it
    response = post(client, small_school, own)
    assert response.status_code == 409
    assert "votre propre compte" in unescape(response.text)
    session.rollback()
    assert session.get(User, small_school.admin.id).is_active is True  # type: ignore[union-attr]
    assert audit_rows(session, "user.deactivate") == []


def test_an_account_with_roles_in_another_school_is_not_this_admins_to_switch_off(
    client: TestClient, session: Session, small_school: SmallSchool
) -> None:
    other = factories.school(session, "autre", "École du Lac")
    grant_role(session=session, user=small_school.teacher, school=other, role=Role.TEACHER)
    session.commit()
    signed_in(client, "admin@example.org")
    url = f"{users_url(small_school)}/{small_school.teacher.id}/deactivate"
    response = submit(client, users_url(small_school), url)
    assert response.status_code == 409
    assert "une autre école" in unescape(response.text)
    session.rollback()
    assert session.get(User, small_school.teacher.id).is_active is True  # type: ignore[union-attr]


def test_a_user_outside_the_school_cannot_be_targeted(client: TestClient, session: Session,
                                                      small_school: SmallSchool) -> None:
    signed_in(client, "admin@example.org")
    parent = small_school.parent
    url = f"{users_url(small_school)}/{parent.id}/roles/grant"
    assert post(client, small_school, url, role="admin").status_code == 404
    url = f"{users_url(small_school)}/{parent.id}/deactivate"
    assert post(client, small_school, url).status_code == 404
    session.rollback()
    assert session.get(User, parent.id).is_active is True  # type: ignore[union-attr]
    assert roles_of(session, "parent@example.org", small_school.school.id) == set()


def test_the_invitation_can_be_sent_again_until_a_password_is_chosen(
    client: TestClient, session: Session, small_school: SmallSchool
) -> None:
    signed_in(client, "admin@example.org")
    add(client, small_school, email="slow@example.org", roles=["teacher"])
    session.rollback()
    slow = get_user_by_email(session, "slow@example.org")
    assert slow is not None
    again = submit(client, users_url(small_school), f"{users_url(small_school)}/{slow.id}/invite")
    assert again.status_code == 200
    assert LINK.search(again.text) is not None
    assert len(audit_rows(session, "user.invite")) == 2
    with_password = f"{users_url(small_school)}/{small_school.teacher.id}/invite"
    assert post(client, small_school, with_password).status_code == 400
    assert len(audit_rows(session, "user.invite")) == 2
