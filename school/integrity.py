"""Integrity checks of the shared records, run by `moulin db check`."""

from __future__ import annotations

from sqlmodel import Session, col, select

from school.models import Classroom, Guardianship, Pupil


def check(session: Session) -> list[str]:
    """Return one plain sentence per problem found; an empty list means all is well."""
    problems: list[str] = []
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        result = session.connection().exec_driver_sql("PRAGMA integrity_check").scalar()
        if result != "ok":
            problems.append(f"SQLite integrity check failed: {result}")
        for table, rowid, parent, _ in session.connection().exec_driver_sql(
            "PRAGMA foreign_key_check"
        ):
            problems.append(f"{table} row {rowid} points at a missing {parent}")
    misplaced = session.exec(
        select(Pupil.external_ref, Pupil.school_id, Classroom.school_id)
        .join(Classroom, col(Pupil.classroom_id) == Classroom.id)
        .where(Pupil.school_id != Classroom.school_id)
    ).all()
    for ref, pupil_school, class_school in misplaced:
        problems.append(
            f"pupil {ref} belongs to school {pupil_school} but sits in a class of school "
            f"{class_school}"
        )
    backwards = session.exec(
        select(Guardianship.id).where(
            col(Guardianship.ends_on).is_not(None),
            col(Guardianship.ends_on) < col(Guardianship.starts_on),
        )
    ).all()
    problems.extend(f"guardianship {gid} ends before it starts" for gid in backwards)
    return problems
