"""The user's own sessions: where and when they are signed in, and signing any of them out
(a phone left somewhere, a shared computer)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from parent_portal import credentials, sessions
from parent_portal.access import ViewerDep
from parent_portal.account_view import live_sessions_of, local_text, school_zone
from parent_portal.deps import ClockDep, SessionDep, SettingsDep, SignedInDep
from parent_portal.routes.auth import client_ip
from parent_portal.templating import render
from school import audit
from school.errors import NotFound
from school.models import WebSession

router = APIRouter()


@router.get("/account/sessions")
def sessions_page(request: Request, viewer: ViewerDep, signed_in: SignedInDep,
                  session: SessionDep, settings: SettingsDep, clock: ClockDep) -> Response:
    assert signed_in is not None
    zone = school_zone(session, settings)
    rows = [{
        "id": row.id, "this": row.id == signed_in.web_session.id,
        "created": local_text(row.created_at, zone),
        "last_seen": local_text(row.last_seen_at, zone),
        "ip": row.ip or "", "user_agent": row.user_agent,
    } for row in live_sessions_of(session, viewer.user_id, now=clock(), settings=settings)]
    return render(request, "account_sessions.html", {
        "rows": rows, "done": request.query_params.get("done", "") == "revoked",
    })


@router.post("/account/sessions/{session_id}/revoke")
def revoke(request: Request, session_id: int, viewer: ViewerDep, signed_in: SignedInDep,
           session: SessionDep, settings: SettingsDep, clock: ClockDep) -> Response:
    assert signed_in is not None
    target = session.get(WebSession, session_id)
    if target is None or target.user_id != viewer.user_id:
        raise NotFound("no such session")  # someone else's is none of this user's business
    sessions.revoke(session=session, web_session=target, now=clock())
    audit.record(session, action="session.revoke", actor_user_id=viewer.user_id,
                 target_type="web_session", target_id=session_id, ip=client_ip(request))
    session.commit()
    if session_id == signed_in.web_session.id:
        response = RedirectResponse("/login", status_code=303)
        sessions.clear_session_cookie(response, settings)
        return response
    return RedirectResponse("/account/sessions?done=revoked", status_code=303)


@router.post("/account/sessions/revoke-others")
def revoke_others(request: Request, viewer: ViewerDep, signed_in: SignedInDep,
                  session: SessionDep, clock: ClockDep) -> Response:
    assert signed_in is not None
    credentials.end_sessions(session=session, user_id=viewer.user_id, now=clock(),
                             keep_id=signed_in.web_session.id)
    audit.record(session, action="session.revoke_others", actor_user_id=viewer.user_id,
                 ip=client_ip(request))
    session.commit()
    return RedirectResponse("/account/sessions?done=revoked", status_code=303)
