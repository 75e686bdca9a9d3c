"""The register of processing (GDPR art. 30) for office and admin staff, drawn up from the
settings and the database at each view (see parent_portal.register)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from parent_portal import register
from parent_portal.access import ENROL_ROLES, StaffViewer, school_ids_with
from parent_portal.deps import ClockDep, SessionDep, SettingsDep
from parent_portal.errors import Forbidden
from parent_portal.templating import language_of, render

router = APIRouter()


@router.get("/staff/gdpr/register")
def register_page(request: Request, viewer: StaffViewer, session: SessionDep,
                  settings: SettingsDep, clock: ClockDep) -> Response:
    # It says where the data lives (hosts, folders): for the office and admins only.
    schools = school_ids_with(session, viewer.user_id, ENROL_ROLES)
    if not schools:
        raise Forbidden("the register is for office and admin staff")
    built = register.build(session, settings, lang=language_of(request), now=clock(),
                           school_ids=schools)
    return render(request, "gdpr_register.html", {"register": built,
                                                  "fields": register.FIELDS})
