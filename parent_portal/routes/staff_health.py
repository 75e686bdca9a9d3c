"""The staff health page: is every till, camera node and camera of my schools alive?

Any staff role of a school sees that school's devices (a cashier checks the tills before
lunch, a teacher a room's camera); parents do not. How many watch a camera is shown only
to whom `webcam.admin.viewer_counts_seen` allows. The taps on which a till and the server
disagreed are counted for every staff role, and listed with the pupil's name and the
amounts for office and admin, who handle the money. `/healthz` is for load balancers.
"""

from __future__ import annotations

from dataclasses import replace
from typing import cast

from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import Response

from cardpay.rules import MESSAGES, Reason
from parent_portal.access import StaffViewer, staff_school_ids
from parent_portal.deps import ClockDep, SessionDep
from parent_portal.health_view import SchoolHealth, staff_schools_health
from parent_portal.money_access import MOVE_MONEY, money_roles
from parent_portal.money_view import Formats
from parent_portal.templating import language_of, render
from school.device_reports import STALE_AFTER
from webcam.admin import viewer_counts_seen
from webcam.runtime import CameraRuntime

router = APIRouter()
REFRESH_SECONDS = 30


@router.get("/staff/health")
def staff_health(request: Request, viewer: StaffViewer, session: SessionDep,
                 clock: ClockDep) -> Response:
    # Read, never started, here: a page view must not start capturing cameras.
    runtime = cast(CameraRuntime, request.app.state.cameras)
    school_ids = staff_school_ids(session, viewer.user_id)
    handles_money = {school_id for school_id in school_ids
                     if money_roles(session, viewer.user_id, school_id) & MOVE_MONEY}
    schools = [_counts_for(session, viewer.user_id, school) for school in staff_schools_health(
        session, runtime, school_ids, clock(), handles_money)]
    lang = language_of(request)

    def said(reason: str) -> str:  # a verdict's words, as the till would have shown them
        return MESSAGES.get(lang, MESSAGES["en"])[Reason(reason)].format(first="").strip()

    return render(request, "staff_health.html", {
        "schools": schools, "refresh": REFRESH_SECONDS, "said": said,
        "fmt": {s.school.id: Formats.of(request, s.school) for s in schools},
        "stale_minutes": int(STALE_AFTER.total_seconds() // 60),
    }, headers={"Cache-Control": "no-store"})


def _counts_for(session: Session, user_id: int, health: SchoolHealth) -> SchoolHealth:
    seen = viewer_counts_seen(session, user_id, health.school.id or 0)
    cameras = [row if row.id in seen else replace(row, viewers=None) for row in health.cameras]
    return replace(health, cameras=cameras)
