"""The staff health page: is every till, camera node and camera of my schools alive?

Any staff role of a school sees that school's devices (a cashier checks the tills before
lunch, a teacher a room's camera); parents do not. `/healthz` is for load balancers.
"""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Request
from starlette.responses import Response

from parent_portal.access import StaffViewer, staff_school_ids
from parent_portal.deps import ClockDep, SessionDep
from parent_portal.health_view import staff_schools_health
from parent_portal.templating import render
from school.device_reports import STALE_AFTER
from webcam.runtime import CameraRuntime

router = APIRouter()
REFRESH_SECONDS = 30


@router.get("/staff/health")
def staff_health(request: Request, viewer: StaffViewer, session: SessionDep,
                 clock: ClockDep) -> Response:
    # Read, never started, here: a page view must not start capturing cameras.
    runtime = cast(CameraRuntime, request.app.state.cameras)
    schools = staff_schools_health(session, runtime, staff_school_ids(session, viewer.user_id),
                                   clock())
    return render(request, "staff_health.html", {
        "schools": schools, "refresh": REFRESH_SECONDS,
        "stale_minutes": int(STALE_AFTER.total_seconds() // 60),
    }, headers={"Cache-Control": "no-store"})
