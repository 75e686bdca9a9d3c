"""The staff health page: is every till, camera node and camera of my schools alive?

Any staff role of a school sees that school's devices (a cashier checks the tills before
lunch, a teacher a room's camera); parents do not. How many watch a camera is shown only
to whom `webcam.admin.viewer_counts_seen` allows. `/healthz` is for load balancers.
"""

from __future__ import annotations

from dataclasses import replace
from typing import cast

from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import Response

from parent_portal.access import StaffViewer, staff_school_ids
from parent_portal.deps import ClockDep, SessionDep
from parent_portal.health_view import SchoolHealth, staff_schools_health
from parent_portal.templating import render
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
    schools = [_counts_for(session, viewer.user_id, school) for school in staff_schools_health(
        session, runtime, staff_school_ids(session, viewer.user_id), clock())]
    return render(request, "staff_health.html", {
        "schools": schools, "refresh": REFRESH_SECONDS,
        "stale_minutes": int(STALE_AFTER.total_seconds() // 60),
    }, headers={"Cache-Control": "no-store"})


def _counts_for(session: Session, user_id: int, health: SchoolHealth) -> SchoolHealth:
    seen = viewer_counts_seen(session, user_id, health.school.id or 0)
    cameras = [row if row.id in seen else replace(row, viewers=None) for row in health.cameras]
    return replace(health, cameras=cameras)
