"""Importing the pupil register: all or nothing, every bad row named, re-import is a no-op."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session, func, select

from school.errors import ImportRejected
from school.models import AuditEvent, Classroom, Guardianship, Pupil, School, User
from school.pupil_import import import_pupils
from tests import factories

TODAY = date(2026, 9, 2)
HEADER = "pupil_ref,last_name,first_name,class,birth_date,guardian1_email,guardian2_email\n"


def _csv(rows: int, *, extra: str = "") -> bytes:
    lines = [HEADER]
    for i in range(rows):
        lines.append(
            f"R{i:03d},Nom{i},Prénom{i},{'CP' if i % 2 else 'CE1'},2018-01-{i % 28 + 1:02d},"
            f"famille{i}@example.org,\n"
        )
    return ("".join(lines) + extra).encode()


def _count(session: Session, model: type) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())


def _import(session: Session, school: School, raw: bytes):  # type: ignore[no-untyped-def]
    result = import_pupils(session=session, school=school, raw=raw, today=TODAY)
    session.commit()
    return result


@pytest.fixture
def school(session: Session) -> School:
    record = factories.school(session)
    session.commit()
    return record


def test_imports_pupils_classes_and_guardians(session: Session, school: School) -> None:
    result = _import(session, school, _csv(40))
    assert (result.pupils_created, result.classes_created, result.guardians_created) == (40, 2, 40)
    pupil = session.exec(select(Pupil).where(Pupil.external_ref == "R007")).one()
    assert (pupil.first_name, pupil.birth_date) == ("Prénom7", date(2018, 1, 8))
    link = session.exec(select(Guardianship).where(Guardianship.pupil_id == pupil.id)).one()
    assert link.starts_on == TODAY
    assert session.get(User, link.user_id).email == "famille7@example.org"  # type: ignore[union-attr]
    assert _count(session, AuditEvent) == 1


def test_reimporting_the_same_file_changes_nothing(session: Session, school: School) -> None:
    _import(session, school, _csv(10))
    counts = [_count(session, m) for m in (Pupil, Classroom, User, Guardianship, AuditEvent)]
    again = _import(session, school, _csv(10))
    assert not again.changed_anything
    assert again.pupils_unchanged == 10
    assert [
        _count(session, m) for m in (Pupil, Classroom, User, Guardianship, AuditEvent)
    ] == counts


def test_a_changed_row_updates_that_pupil_only(session: Session, school: School) -> None:
    _import(session, school, _csv(5))
    raw = _csv(5).replace(b"R002,Nom2,Pr\xc3\xa9nom2,CE1", b"R002,Nom2,Pr\xc3\xa9nom2,CM1")
    result = _import(session, school, raw)
    assert (result.pupils_updated, result.changed_refs, result.classes_created) == (1, ["R002"], 1)


def test_one_bad_row_among_many_writes_nothing_and_names_each_bad_line(
    session: Session, school: School
) -> None:
    raw = _csv(200).replace(
        b"R050,Nom50,Pr\xc3\xa9nom50,CE1,2018-01-23", b"R050,Nom50,,CE1,2018-01-23"
    )
    raw = raw.replace(b"R120,Nom120,Pr\xc3\xa9nom120,CE1,2018-01-09", b"R120,Nom120,P,CE1,9/9/99x")
    with pytest.raises(ImportRejected) as caught:
        import_pupils(session=session, school=school, raw=raw, today=TODAY)
    session.rollback()
    assert [(p.line, p.reason) for p in caught.value.problems] == [
        (52, "first_name is empty"),
        (122, "birth date '9/9/99x' is not a date (use 2017-03-04 or 04/03/2017)"),
    ]
    assert _count(session, Pupil) == 0
    assert _count(session, User) == 0


def test_truncated_file_is_refused(session: Session, school: School) -> None:
    raw = _csv(3) + b"R999,Trunc"
    with pytest.raises(ImportRejected) as caught:
        import_pupils(session=session, school=school, raw=raw, today=TODAY)
    assert [str(p) for p in caught.value.problems] == [
        "line 5: expected 7 fields, found 2 (row cut short?)"
    ]


def test_unterminated_quote_is_refused(session: Session, school: School) -> None:
    raw = _csv(2) + b'R9,"Dupont,Jean,CP,,,\n'
    with pytest.raises(ImportRejected) as caught:
        import_pupils(session=session, school=school, raw=raw, today=TODAY)
    assert "cut short or malformed" in caught.value.problems[0].reason


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("R001,Autre,Nom,CP,,,\n", "duplicate pupil: reference R001 is already on line 3"),
        (
            "X1,Nom1,Prénom1,CP,2018-01-02,,\n",
            "duplicate pupil: Prénom1 Nom1, born 2018-01-02, is already on line 3 under "
            "another reference",
        ),
        (
            "X2,Nom,Jo,CP,,not-an-email,\n",
            "guardian1_email 'not-an-email' is not an e-mail address",
        ),
        ("X3,Nom,Jo,CP,,a@example.org,A@example.org\n", "the same guardian is listed twice"),
    ],
)
def test_duplicates_and_bad_values_in_the_file(
    session: Session, school: School, extra: str, reason: str
) -> None:
    with pytest.raises(ImportRejected) as caught:
        import_pupils(session=session, school=school, raw=_csv(3, extra=extra), today=TODAY)
    assert [p.reason for p in caught.value.problems] == [reason]


def test_a_pupil_already_registered_under_another_reference_is_refused(
    session: Session, school: School
) -> None:
    _import(session, school, _csv(3))
    raw = (HEADER + "NEW1,Nom1,Prénom1,CP,2018-01-02,,\n").encode()
    with pytest.raises(ImportRejected) as caught:
        import_pupils(session=session, school=school, raw=raw, today=TODAY)
    assert caught.value.problems[0].reason.endswith("is already registered under reference R001")


def test_french_headers_semicolons_and_windows_1252(session: Session, school: School) -> None:
    raw = "Identifiant;Nom;Prénom;Classe;Date_naissance\n7;Lefèvre;Zoé;CP;04/03/2019\n"
    result = _import(session, school, raw.encode("cp1252"))
    assert result.pupils_created == 1
    pupil = session.exec(select(Pupil)).one()
    assert (pupil.last_name, pupil.first_name, pupil.birth_date) == (
        "Lefèvre",
        "Zoé",
        date(2019, 3, 4),
    )


def test_missing_and_unknown_columns(session: Session, school: School) -> None:
    with pytest.raises(ImportRejected) as caught:
        import_pupils(
            session=session, school=school, raw=b"pupil_ref,nom,shoe_size\n1,A,40\n", today=TODAY
        )
    assert str(caught.value.problems[0]) == (
        "line 1: missing column(s): first_name, class; unknown column(s): shoe_size"
    )


def test_binary_garbage_is_refused(session: Session, school: School) -> None:
    with pytest.raises(ImportRejected):
        import_pupils(session=session, school=school, raw=bytes(range(256)) * 4, today=TODAY)
    assert _count(session, Pupil) == 0


def test_progress_is_reported(session: Session, school: School) -> None:
    seen: list[tuple[int, int]] = []
    import_pupils(
        session=session,
        school=school,
        raw=_csv(4),
        today=TODAY,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
