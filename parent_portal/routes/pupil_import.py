"""The office's pupil-register import: upload the CSV export of the school's register;
every row is checked and then all of it is written, or nothing (school.pupil_import).

GET  /staff/schools/{id}/pupils/import   the form, for office and admin staff
POST /staff/schools/{id}/pupils/import   upload (multipart, at most 5 MB)
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from sqlmodel import Session
from starlette.responses import Response

from parent_portal.access import ENROL_ROLES, StaffViewer, Viewer, school_ids_with, staff_school_ids
from parent_portal.deps import SessionDep
from parent_portal.errors import Forbidden
from parent_portal.money_access import deny
from parent_portal.templating import render
from school.errors import ImportRejected, RowProblem
from school.models import School
from school.pupil_import import ImportResult, import_pupils

logger = logging.getLogger(__name__)
router = APIRouter()

IMPORT_ROLES = ENROL_ROLES
MAX_FILE_BYTES = 5 * 1024 * 1024  # a register of several thousand pupils
UPLOAD_LIMIT = MAX_FILE_BYTES + 64 * 1024
# Files people pick by mistake instead of the CSV export, recognised by their first bytes.
NOT_CSV = {
    b"PK\x03\x04": "a spreadsheet (.xlsx or .ods): export it as CSV first",
    b"\xd0\xcf\x11\xe0": "an old Excel file (.xls): export it as CSV first",
    b"%PDF": "a PDF document, not a CSV file",
}


def _managed_school(request: Request, session: Session, viewer: Viewer, school_id: int) -> School:
    school = session.get(School, school_id)
    if school is None or school_id not in staff_school_ids(session, viewer.user_id):
        raise deny(request, session, viewer, "school", school_id, "staff.import")
    if school_id not in school_ids_with(session, viewer.user_id, IMPORT_ROLES):
        raise Forbidden("the pupil register is imported by the office")
    return school


def content_problem(raw: bytes) -> str | None:
    """Why these bytes cannot be a CSV file, or None; the rows themselves are checked by
    school.pupil_import."""
    if len(raw) > MAX_FILE_BYTES:
        return f"the file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB"
    for magic, what in NOT_CSV.items():
        if raw.startswith(magic):
            return f"this is {what}"
    if b"\x00" in raw:
        return "the file is not text (it contains NUL bytes)"
    return None


def _page(request: Request, school: School, *, result: ImportResult | None = None,
          problems: list[RowProblem] | None = None, status_code: int = 200) -> Response:
    return render(request, "staff_pupil_import.html", {
        "school": school, "result": result, "problems": problems or [],
        "max_mb": MAX_FILE_BYTES // 1024 // 1024,
    }, status_code=status_code)


@router.get("/staff/schools/{school_id}/pupils/import")
def import_page(request: Request, school_id: int, viewer: StaffViewer,
                session: SessionDep) -> Response:
    return _page(request, _managed_school(request, session, viewer, school_id))


@router.post("/staff/schools/{school_id}/pupils/import", max_body_size=UPLOAD_LIMIT)
def import_register(request: Request, school_id: int, viewer: StaffViewer, session: SessionDep,
                    pupils_csv: Annotated[UploadFile, File()]) -> Response:
    school = _managed_school(request, session, viewer, school_id)
    raw = pupils_csv.file.read(MAX_FILE_BYTES + 1)
    problem = content_problem(raw)
    if problem is not None:
        return _page(request, school, problems=[RowProblem(0, problem)],
                     status_code=413 if len(raw) > MAX_FILE_BYTES else 400)
    try:
        result = import_pupils(session=session, school=school, raw=raw, today=viewer.today,
                               actor_user_id=viewer.user_id, source=pupils_csv.filename or "")
    except ImportRejected as exc:
        session.rollback()
        logger.info("pupil import for school %s refused: %s", school_id, exc)
        return _page(request, school, problems=exc.problems, status_code=400)
    session.commit()  # import_pupils recorded it in the audit log, if it changed anything
    return _page(request, school, result=result)
