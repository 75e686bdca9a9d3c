"""Importing a school's pupil register from CSV: check every row, then write all or nothing.

The file has a header row. Columns (English or French names, any order; `,` `;` or tab):

| column           | also accepted      | required | example              |
| ---------------- | ------------------ | -------- | -------------------- |
| pupil_ref        | identifiant        | yes      | 2024-0012            |
| last_name        | nom                | yes      | Martin               |
| first_name       | prenom, prénom     | yes      | Léa                  |
| class            | classe             | yes      | CE1 A                |
| birth_date       | date_naissance     | no       | 2017-03-04, 04/03/2017 |
| tariff_band      | tarif              | no       | T3                   |
| allergies        |                    | no       | arachide             |
| diet_notes       | regime, régime     | no       | sans porc            |
| guardian1_email  | responsable1_email | no       | a@example.org        |
| guardian1_name   | responsable1_nom   | no       | Anne Martin          |
| guardian2_email  | responsable2_email | no       |                      |
| guardian2_name   | responsable2_nom   | no       |                      |

Re-importing the same file changes nothing. Pupils absent from the file are left alone:
a pupil leaves through the office, not by omission from a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, select

from school import audit
from school.errors import ImportRejected, RowProblem
from school.models import Classroom, Guardianship, Pupil, School, User
from school.people import link_guardian

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_FIELD = 200
GUARDIAN_SLOTS = 2

_ALIASES: dict[str, str] = {
    "identifiant": "pupil_ref",
    "nom": "last_name",
    "prenom": "first_name",
    "classe": "class",
    "date_naissance": "birth_date",
    "tarif": "tariff_band",
    "regime": "diet_notes",
    **{f"responsable{i}_email": f"guardian{i}_email" for i in range(1, GUARDIAN_SLOTS + 1)},
    **{f"responsable{i}_nom": f"guardian{i}_name" for i in range(1, GUARDIAN_SLOTS + 1)},
}
_COLUMNS = {
    "pupil_ref",
    "last_name",
    "first_name",
    "class",
    "birth_date",
    "tariff_band",
    "allergies",
    "diet_notes",
    *(f"guardian{i}_{k}" for i in range(1, GUARDIAN_SLOTS + 1) for k in ("email", "name")),
}
REQUIRED = ("pupil_ref", "last_name", "first_name", "class")


@dataclass(frozen=True)
class GuardianRow:
    email: str
    name: str


@dataclass(frozen=True)
class PupilRow:
    line: int
    ref: str
    last_name: str
    first_name: str
    classroom: str
    birth_date: date | None
    tariff_band: str
    allergies: str
    diet_notes: str
    guardians: tuple[GuardianRow, ...]


@dataclass
class ImportResult:
    rows: int = 0
    pupils_created: int = 0
    pupils_updated: int = 0
    pupils_unchanged: int = 0
    classes_created: int = 0
    guardians_created: int = 0
    links_created: int = 0
    changed_refs: list[str] = field(default_factory=list)

    @property
    def changed_anything(self) -> bool:
        return bool(
            self.pupils_created
            or self.pupils_updated
            or self.classes_created
            or self.guardians_created
            or self.links_created
        )


def _canon(header: str) -> str:
    text = unicodedata.normalize("NFKD", header.strip().lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace(" ", "_").replace("-", "_")
    return _ALIASES.get(text, text)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheets saved on French Windows machines default to Windows-1252.
        return raw.decode("cp1252", errors="strict")


def _parse_date(text: str) -> date:
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"birth date {text!r} is not a date (use 2017-03-04 or 04/03/2017)")


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect, strict=True)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportRejected(
                [RowProblem(reader.line_num, f"the file is cut short or malformed ({exc})")]
            ) from exc
        yield reader.line_num, row


def parse(raw: bytes) -> list[PupilRow]:
    """Check every row; raise ImportRejected listing each bad one, or return them all."""
    if len(raw) > MAX_FILE_BYTES:
        raise ImportRejected([RowProblem(0, f"the file is larger than {MAX_FILE_BYTES} bytes")])
    try:
        text = _decode(raw)
    except UnicodeDecodeError as exc:
        raise ImportRejected(
            [RowProblem(0, "the file is not text (UTF-8 or Windows-1252)")]
        ) from exc
    rows = _rows(text)
    header_line, header = next(rows, (1, []))
    columns = [_canon(h) for h in header]
    missing = [c for c in REQUIRED if c not in columns]
    unknown = [h for h, c in zip(header, columns, strict=True) if c not in _COLUMNS]
    if missing or unknown:
        reasons = []
        if missing:
            reasons.append("missing column(s): " + ", ".join(missing))
        if unknown:
            reasons.append("unknown column(s): " + ", ".join(unknown))
        raise ImportRejected([RowProblem(header_line, "; ".join(reasons))])

    problems: list[RowProblem] = []
    parsed: list[PupilRow] = []
    for line, values in rows:
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(columns):
            problems.append(
                RowProblem(
                    line, f"expected {len(columns)} fields, found {len(values)} (row cut short?)"
                )
            )
            continue
        try:
            parsed.append(_row(line, dict(zip(columns, values, strict=True))))
        except ValueError as exc:
            problems.append(RowProblem(line, str(exc)))
    problems.extend(_duplicates(parsed))
    if problems:
        raise ImportRejected(sorted(problems, key=lambda p: p.line))
    if not parsed:
        raise ImportRejected([RowProblem(header_line, "the file has no pupil rows")])
    return parsed


def _row(line: int, cells: dict[str, str]) -> PupilRow:
    values = {k: " ".join(v.split()) for k, v in cells.items()}
    for name in REQUIRED:
        if not values.get(name):
            raise ValueError(f"{name} is empty")
    for name, value in values.items():
        if len(value) > MAX_FIELD:
            raise ValueError(f"{name} is longer than {MAX_FIELD} characters")
    birth = values.get("birth_date", "")
    guardians = []
    for i in range(1, GUARDIAN_SLOTS + 1):
        email = values.get(f"guardian{i}_email", "")
        if not email:
            continue
        try:
            email = validate_email(email, check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:
            raise ValueError(f"guardian{i}_email {email!r} is not an e-mail address") from exc
        guardians.append(GuardianRow(email=email, name=values.get(f"guardian{i}_name", "")))
    if len({g.email for g in guardians}) != len(guardians):
        raise ValueError("the same guardian is listed twice")
    return PupilRow(
        line=line,
        ref=values["pupil_ref"],
        last_name=values["last_name"],
        first_name=values["first_name"],
        classroom=values["class"],
        birth_date=_parse_date(birth) if birth else None,
        tariff_band=values.get("tariff_band", ""),
        allergies=values.get("allergies", ""),
        diet_notes=values.get("diet_notes", ""),
        guardians=tuple(guardians),
    )


def _identity(row: PupilRow) -> tuple[str, str, date] | None:
    if row.birth_date is None:
        return None
    return (row.last_name.casefold(), row.first_name.casefold(), row.birth_date)


def _duplicates(rows: list[PupilRow]) -> list[RowProblem]:
    problems = []
    by_ref: dict[str, int] = {}
    by_identity: dict[tuple[str, str, date], int] = {}
    for row in rows:
        if row.ref in by_ref:
            problems.append(
                RowProblem(
                    row.line,
                    f"duplicate pupil: reference {row.ref} is already on line {by_ref[row.ref]}",
                )
            )
            continue
        by_ref[row.ref] = row.line
        ident = _identity(row)
        if ident is not None and ident in by_identity:
            problems.append(
                RowProblem(
                    row.line,
                    f"duplicate pupil: {row.first_name} {row.last_name}, born {row.birth_date}, "
                    f"is already on line {by_identity[ident]} under another reference",
                )
            )
        elif ident is not None:
            by_identity[ident] = row.line
    return problems


def _check_against_register(session: Session, school: School, rows: list[PupilRow]) -> None:
    """Refuse a row that names, under a new reference, a pupil the school already has."""
    known = session.exec(select(Pupil).where(Pupil.school_id == school.id)).all()
    by_identity = {}
    for pupil in known:
        if pupil.birth_date is not None:
            key = (pupil.last_name.casefold(), pupil.first_name.casefold(), pupil.birth_date)
            by_identity[key] = pupil.external_ref
    problems = []
    for row in rows:
        ident = _identity(row)
        ref = by_identity.get(ident) if ident is not None else None
        if ref is not None and ref != row.ref:
            problems.append(
                RowProblem(
                    row.line,
                    f"duplicate pupil: {row.first_name} {row.last_name}, born {row.birth_date}, "
                    f"is already registered under reference {ref}",
                )
            )
    if problems:
        raise ImportRejected(problems)


def import_pupils(
    *,
    session: Session,
    school: School,
    raw: bytes,
    today: date,
    actor_user_id: int | None = None,
    source: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Validate the whole file, then write it in the caller's transaction (commit is the
    caller's). Raises ImportRejected, having written nothing, if any row is bad."""
    rows = parse(raw)
    _check_against_register(session, school, rows)
    result = ImportResult(rows=len(rows))
    rooms = {
        c.name: c
        for c in session.exec(select(Classroom).where(Classroom.school_id == school.id)).all()
    }
    pupils = {
        p.external_ref: p
        for p in session.exec(select(Pupil).where(Pupil.school_id == school.id)).all()
    }
    users: dict[str, User] = {}
    for done, row in enumerate(rows, 1):
        room = rooms.get(row.classroom)
        if room is None:
            room = Classroom(school_id=school.id, name=row.classroom)  # type: ignore[arg-type]
            session.add(room)
            session.flush()
            rooms[row.classroom] = room
            result.classes_created += 1
        _apply_pupil(session, school, row, room, pupils, result)
        pupil = pupils[row.ref]
        for g in row.guardians:
            user = (
                users.get(g.email)
                or session.exec(select(User).where(User.email == g.email)).first()
            )
            if user is None:
                user = User(email=g.email, full_name=g.name)
                session.add(user)
                session.flush()
                result.guardians_created += 1
            users[g.email] = user
            before = session.exec(
                select(Guardianship.id).where(
                    Guardianship.user_id == user.id, Guardianship.pupil_id == pupil.id
                )
            ).first()
            if before is None:
                link_guardian(session=session, user=user, pupil=pupil, starts_on=today)
                result.links_created += 1
        if progress is not None:
            progress(done, len(rows))
    if result.changed_anything:
        audit.record(
            session,
            action="pupils.import",
            school_id=school.id,
            actor_user_id=actor_user_id,
            target_type="school",
            target_id=school.id or "",
            source=Path(source).name,
            rows=result.rows,
            created=result.pupils_created,
            updated=result.pupils_updated,
        )
    return result


def _apply_pupil(
    session: Session,
    school: School,
    row: PupilRow,
    room: Classroom,
    pupils: dict[str, Pupil],
    result: ImportResult,
) -> None:
    wanted = {
        "first_name": row.first_name,
        "last_name": row.last_name,
        "birth_date": row.birth_date,
        "classroom_id": room.id,
        "tariff_band": row.tariff_band,
        "allergies": row.allergies,
        "diet_notes": row.diet_notes,
    }
    pupil = pupils.get(row.ref)
    if pupil is None:
        pupil = Pupil(school_id=school.id, external_ref=row.ref, **wanted)  # type: ignore[arg-type]
        session.add(pupil)
        session.flush()
        pupils[row.ref] = pupil
        result.pupils_created += 1
        return
    changed = {k: v for k, v in wanted.items() if getattr(pupil, k) != v}
    if not changed:
        result.pupils_unchanged += 1
        return
    for key, value in changed.items():
        setattr(pupil, key, value)
    session.add(pupil)
    result.pupils_updated += 1
    result.changed_refs.append(row.ref)
