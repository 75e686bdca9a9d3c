"""Two-step verification on the user's own account: set it up (secret, QR code, a first
code to confirm), get recovery codes, turn it off. Every step that changes it asks for a
current code, and wrong codes count as failed sign-ins."""

from __future__ import annotations

from typing import Annotated

import qrcode
from fastapi import APIRouter, Form, Request
from qrcode.image.svg import SvgPathImage
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from parent_portal import throttle
from parent_portal.access import Viewer, ViewerDep
from parent_portal.anonymous_forms import NO_STORE
from parent_portal.deps import ClockDep, SessionDep, SettingsDep, get_clock
from parent_portal.device_cookie import device_key
from parent_portal.errors import LoginThrottled
from parent_portal.i18n import translator
from parent_portal.routes.auth import client_ip
from parent_portal.templating import language_of, render
from parent_portal.totp_gate import must_enrol, totp_required_for
from school import audit, totp
from school.settings import Settings

router = APIRouter()

FormText = Annotated[str, Form()]


def qr_svg(uri: str) -> str:
    """The QR code of `uri` as an SVG document (paths only), served as an image so that
    no markup built in code reaches a page."""
    image = qrcode.make(uri, image_factory=SvgPathImage, box_size=10, border=2)
    return str(image.to_string(encoding="unicode"))


def grouped(secret: str) -> str:
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def _page(request: Request, session: Session, viewer: Viewer, settings: Settings, *,
          error: str = "", status_code: int = 200) -> Response:
    user = viewer.user
    setup = None
    if user.totp_enabled_at is None and user.totp_secret:
        setup = {"secret": grouped(totp.open_secret(user.totp_secret,
                                                    settings.effective_secret_key()))}
    blocked = must_enrol(session, user, settings)
    return render(request, "account_totp.html", {
        "enabled": user.totp_enabled_at is not None, "setup": setup, "error": error,
        "required": totp_required_for(session, user, settings), "blocked": blocked,
        "codes_left": totp.recovery_codes_left(session, viewer.user_id),
        # No menu while every other page is closed to this user.
        **({"nav_staff": False, "nav_parent": False} if blocked else {}),
    }, status_code=status_code, headers=NO_STORE)


def _codes_page(request: Request, codes: list[str]) -> Response:
    return render(request, "account_recovery_codes.html", {"codes": codes},
                  headers=NO_STORE)


def _check_code(request: Request, session: Session, viewer: Viewer, settings: Settings,
                code: str, *, recovery: bool) -> bool:
    """Whether `code` is a current TOTP code (or, if `recovery`, an unused recovery
    code) of the user's; a wrong one is counted as a failed sign-in and committed."""
    now, ip, user = get_clock(request)(), client_ip(request), viewer.user
    device = device_key(request, settings, user.id)
    retry_at = throttle.locked_until(session=session, email=user.email, ip=ip, now=now,
                                     settings=settings, device=device)
    if retry_at is not None:
        raise LoginThrottled(retry_at)
    if recovery and totp.looks_like_recovery_code(code):
        accepted = totp.use_recovery_code(session, viewer.user_id, code, now)
    else:
        accepted = totp.use_code(session, user, code, now,
                                 secret_key=settings.effective_secret_key())
    if not accepted:
        throttle.record_failure(session=session, email=user.email, ip=ip, now=now,
                                device=device)
        audit.record(session, action="totp.code_refused", actor_user_id=user.id, ip=ip,
                     path=request.url.path)
        session.commit()
    return accepted


@router.get("/account/totp")
def totp_page(request: Request, viewer: ViewerDep, session: SessionDep,
              settings: SettingsDep) -> Response:
    return _page(request, session, viewer, settings)


@router.get("/account/totp/qr.svg")
def totp_qr(viewer: ViewerDep, settings: SettingsDep) -> Response:
    """The QR code of the key being set up; 404 once it is in force (or before)."""
    user = viewer.user
    if user.totp_enabled_at is not None or not user.totp_secret:
        return Response(status_code=404, headers=NO_STORE)
    secret = totp.open_secret(user.totp_secret, settings.effective_secret_key())
    uri = totp.provisioning_uri(secret, user.email)
    return Response(qr_svg(uri), media_type="image/svg+xml", headers=NO_STORE)


@router.post("/account/totp/setup")
def setup(request: Request, viewer: ViewerDep, session: SessionDep, settings: SettingsDep,
          clock: ClockDep) -> Response:
    user = viewer.user
    if user.totp_enabled_at is None:
        sealed = totp.seal_secret(totp.new_secret(), settings.effective_secret_key())
        user.totp_secret, user.totp_last_step = sealed, None
        session.add(user)
        audit.record(session, action="totp.setup", actor_user_id=user.id,
                     ip=client_ip(request))
        session.commit()
    return RedirectResponse("/account/totp", status_code=303)


@router.post("/account/totp/confirm")
def confirm(request: Request, viewer: ViewerDep, session: SessionDep, settings: SettingsDep,
            clock: ClockDep, code: FormText = "") -> Response:
    user = viewer.user
    if user.totp_enabled_at is not None or not user.totp_secret:
        return RedirectResponse("/account/totp", status_code=303)
    if not _check_code(request, session, viewer, settings, code, recovery=False):
        t = translator(language_of(request))
        return _page(request, session, viewer, settings, error=t("totp.error.code"),
                     status_code=400)
    now = clock()
    totp.enable(user, now)
    session.add(user)
    codes = totp.new_recovery_codes(session, viewer.user_id, now)
    audit.record(session, action="totp.enable", actor_user_id=user.id, ip=client_ip(request))
    session.commit()
    return _codes_page(request, codes)


@router.post("/account/totp/recovery-codes")
def renew_codes(request: Request, viewer: ViewerDep, session: SessionDep,
                settings: SettingsDep, clock: ClockDep, code: FormText = "") -> Response:
    if viewer.user.totp_enabled_at is None:
        return RedirectResponse("/account/totp", status_code=303)
    if not _check_code(request, session, viewer, settings, code, recovery=False):
        t = translator(language_of(request))
        return _page(request, session, viewer, settings, error=t("totp.error.code"),
                     status_code=400)
    codes = totp.new_recovery_codes(session, viewer.user_id, clock())
    audit.record(session, action="totp.recovery_codes", actor_user_id=viewer.user_id,
                 ip=client_ip(request))
    session.commit()
    return _codes_page(request, codes)


@router.post("/account/totp/disable")
def disable(request: Request, viewer: ViewerDep, session: SessionDep, settings: SettingsDep,
            code: FormText = "") -> Response:
    user = viewer.user
    if user.totp_enabled_at is None:
        return RedirectResponse("/account/totp", status_code=303)
    t = translator(language_of(request))
    if totp_required_for(session, user, settings):
        return _page(request, session, viewer, settings, error=t("totp.error.required"),
                     status_code=403)
    if not _check_code(request, session, viewer, settings, code, recovery=True):
        return _page(request, session, viewer, settings, error=t("totp.error.code"),
                     status_code=400)
    totp.disable(session, user)
    audit.record(session, action="totp.disable", actor_user_id=user.id, ip=client_ip(request))
    session.commit()
    return RedirectResponse("/account?done=totp_off", status_code=303)
