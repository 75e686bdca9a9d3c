"""Administration: the school's time zone and canteen rules (prices per tariff band, free
meals, overdraft, serving days and hours, offline allowance, re-tap window, default
low-balance alert). Closed days are kept on the calendar page, which this page links to.

A form with one bad field changes nothing and comes back with every problem named.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.responses import RedirectResponse, Response

from cardpay import canteen_admin
from parent_portal.admin_access import Admin, AdminDep
from parent_portal.canteen_form import CanteenForm, read
from parent_portal.deps import SessionDep
from parent_portal.templating import render
from school.errors import InvalidInput
from school.models import Pupil
from school.schools import check_timezone, set_timezone, time_zones

logger = logging.getLogger(__name__)
router = APIRouter()

FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
NEW_BAND_ROWS = 2


def bands_in_use(session: Session, school_id: int) -> dict[str, int]:
    """Pupils still enrolled per tariff band, so that bands without a price show up."""
    rows = session.exec(
        select(Pupil.tariff_band, func.count()).where(
            Pupil.school_id == school_id, Pupil.tariff_band != "", col(Pupil.left_on).is_(None))
        .group_by(col(Pupil.tariff_band))
    ).all()
    return dict(rows)


def _page(request: Request, session: Session, admin: Admin, form: CanteenForm, *,
          errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    in_use = bands_in_use(session, admin.school_id)
    shown = {band for band, _ in form.bands}
    rows = form.bands + [(b, "") for b in sorted(in_use) if b not in shown]
    rows += [("", "")] * NEW_BAND_ROWS
    return render(request, "admin_settings.html", {
        "school": admin.school, "tab": "settings", "form": form, "band_rows": rows,
        "in_use": in_use, "errors": errors or {}, "zones": time_zones(),
        "done": request.query_params.get("done", ""),
    }, status_code=status_code)


@router.get("/admin/schools/{school_id}/settings")
def settings_page(request: Request, admin: AdminDep, session: SessionDep) -> Response:
    choices = canteen_admin.current(session, admin.school_id)
    return _page(request, session, admin, CanteenForm.of(admin.school.timezone, choices))


@router.post("/admin/schools/{school_id}/settings")
def save_settings(
    request: Request, admin: AdminDep, session: SessionDep, timezone: FormText = "",
    default_price: FormText = "", band: FormList = [], band_price: FormList = [],  # noqa: B006
    overdraft: FormText = "", offline_allowance: FormText = "", low_balance_alert: FormText = "",
    retap_seconds: FormText = "", weekday: FormList = [], service_start: FormText = "",  # noqa: B006
    service_end: FormText = "", one_meal_per_day: FormText = "",
) -> Response:
    if len(band) != len(band_price):
        raise InvalidInput("tariff band rows do not match their prices")
    form = CanteenForm(
        timezone=timezone.strip(), default_price=default_price,
        bands=list(zip(band, band_price, strict=True)), overdraft=overdraft,
        offline_allowance=offline_allowance, low_balance_alert=low_balance_alert,
        retap_seconds=retap_seconds, weekdays=weekday, service_start=service_start,
        service_end=service_end, one_meal_per_day=bool(one_meal_per_day),
    )
    choices, errors = read(form)
    try:
        check_timezone(form.timezone)
    except InvalidInput:
        errors["timezone"] = "admin.settings.error.timezone"
    if choices is None or errors:
        session.rollback()
        logger.info("settings of school %s refused: %s", admin.school_id, sorted(errors))
        return _page(request, session, admin, form, errors=errors, status_code=400)
    user_id = admin.viewer.user_id
    set_timezone(session=session, school=admin.school, timezone=form.timezone,
                 actor_user_id=user_id, ip=admin.ip)
    canteen_admin.save(session=session, school_id=admin.school_id, choices=choices,
                       actor_user_id=user_id, ip=admin.ip)
    session.commit()
    return RedirectResponse(f"/admin/schools/{admin.school_id}/settings?done=saved",
                            status_code=303)
