"""A signed-in user's own data and their children's, as a page and as a JSON download
(GDPR art. 15, see parent_portal.export). Every export is written to the audit log."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from parent_portal import export
from parent_portal.access import Viewer, ViewerDep
from parent_portal.audit_log import record_now
from parent_portal.deps import ClockDep, SessionDep, SettingsDep
from parent_portal.routes.auth import client_ip
from parent_portal.templating import language_of, render

router = APIRouter()

NO_STORE = {"Cache-Control": "no-store"}


def _export(request: Request, viewer: Viewer, session: SessionDep, clock: ClockDep,
            settings: SettingsDep, form: str) -> dict[str, Any]:
    data = export.build(session, user=viewer.user, today=viewer.today, now=clock(),
                        lang=language_of(request), default_zone=settings.default_timezone,
                        default_currency=settings.default_currency)
    record_now(request, action="gdpr.export", actor_user_id=viewer.user_id, target_type="user",
               target_id=viewer.user_id, ip=client_ip(request), format=form,
               children=len(data["children"]))
    return data


@router.get("/account/export")
def export_page(request: Request, viewer: ViewerDep, session: SessionDep, clock: ClockDep,
                settings: SettingsDep) -> Response:
    data = _export(request, viewer, session, clock, settings, "html")
    return render(request, "family_export.html", {"data": data}, headers=NO_STORE)


@router.get("/account/export.json")
def export_json(request: Request, viewer: ViewerDep, session: SessionDep, clock: ClockDep,
                settings: SettingsDep) -> Response:
    data = _export(request, viewer, session, clock, settings, "json")
    name = f"moulin-export-{viewer.today.isoformat()}.json"
    return Response(json.dumps(data, ensure_ascii=False, indent=2),
                    media_type="application/json",
                    headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'})
