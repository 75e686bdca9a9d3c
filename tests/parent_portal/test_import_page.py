"""The office imports the pupil register from a CSV upload: all of it or nothing, with
the file's size and kind checked before a row is read."""

from __future__ import annotations

from sqlmodel import Session, col, select

from parent_portal.routes.pupil_import import MAX_FILE_BYTES
from school.models import Pupil, Role
from school.people import grant_role
from tests import factories
from tests.factories import SmallSchool
from tests.parent_portal.conftest import TestClient, csrf_from, signed_in

GOOD = ("identifiant;nom;prénom;classe;responsable1_email\n"
        "2026-001;Roux;Maël;CM1;roux@example.org\n"
        "2026-002;Faure;Iris;CM1;\n").encode()


def send(client: TestClient, school_id: int, data: bytes, name: str = "eleves.csv",
         content_type: str = "text/csv") -> object:
    page = client.get(f"/staff/schools/{school_id}/pupils/import")
    assert page.status_code == 200, page.text
    return client.post(f"/staff/schools/{school_id}/pupils/import",
                       data={"csrf_token": csrf_from(page.text)},
                       files={"pupils_csv": (name, data, content_type)})


def pupil_names(session: Session) -> list[str]:
    session.rollback()  # see what the app committed
    return [p.first_name for p in session.exec(select(Pupil).order_by(col(Pupil.id)))]


def test_the_office_imports_a_register(client: TestClient, small_school: SmallSchool,
                                       session: Session) -> None:
    signed_in(client, "office@example.org")
    home = client.get("/staff")
    assert f'href="/staff/schools/{small_school.school.id}/pupils/import"' in home.text
    response = send(client, small_school.school.id or 0, GOOD)
    assert response.status_code == 200
    assert "2 lignes importées" in response.text
    assert "Nouveaux élèves : 2" in response.text
    assert pupil_names(session)[-2:] == ["Maël", "Iris"]


def test_one_bad_row_and_nothing_is_imported(client: TestClient, small_school: SmallSchool,
                                             session: Session) -> None:
    signed_in(client, "admin@example.org")
    bad = GOOD + b"2026-003;Blanc;;CM1;not-an-email\n"
    response = send(client, small_school.school.id or 0, bad)
    assert response.status_code == 400
    assert "Rien n&#39;a été importé" in response.text
    assert "Ligne 4 :" in response.text
    assert "Maël" not in pupil_names(session)


def test_files_that_are_no_csv_are_refused_before_reading(
    client: TestClient, small_school: SmallSchool, session: Session,
) -> None:
    signed_in(client, "office@example.org")
    school_id = small_school.school.id or 0
    cases = [
        (b"PK\x03\x04" + b"\0" * 200, 400, "export it as CSV"),
        (b"%PDF-1.7\n" + GOOD, 400, "a PDF document"),
        (GOOD.replace(b"Iris", b"Ir\0is"), 400, "NUL bytes"),
        (GOOD + b"a" * MAX_FILE_BYTES, 413, "larger than"),
        # Far above the limit, the upload is cut off before it is even stored.
        (GOOD * (2 * MAX_FILE_BYTES // len(GOOD)), 413, "Too Large"),
    ]
    for data, status, message in cases:
        response = send(client, school_id, data, "eleves.csv", "text/csv")
        assert response.status_code == status, message
        assert message in response.text
    assert "Maël" not in pupil_names(session)


def test_only_the_schools_office_and_admin_import(
    client: TestClient, small_school: SmallSchool, session: Session,
) -> None:
    school_id = small_school.school.id or 0
    for email in ("teacher@example.org", "cashier@example.org"):
        client.cookies.clear()
        signed_in(client, email)
        assert f"/staff/schools/{school_id}/pupils/import" not in client.get("/staff").text
        assert client.get(f"/staff/schools/{school_id}/pupils/import").status_code == 403
        token = csrf_from(client.get("/staff").text)
        refused = client.post(f"/staff/schools/{school_id}/pupils/import",
                              data={"csrf_token": token},
                              files={"pupils_csv": ("e.csv", GOOD, "text/csv")})
        assert refused.status_code == 403
    session.rollback()
    other = factories.school(session, slug="autre", name="École du Pont")
    head = factories.user(session, "head@autre.example.org")
    grant_role(session=session, user=head, school=other, role=Role.OFFICE)
    session.commit()
    client.cookies.clear()
    signed_in(client, "head@autre.example.org")
    assert client.get(f"/staff/schools/{school_id}/pupils/import").status_code == 404
    client.cookies.clear()
    signed_in(client, "parent@example.org")
    assert client.get(f"/staff/schools/{school_id}/pupils/import").status_code == 403
    assert "Maël" not in pupil_names(session)
