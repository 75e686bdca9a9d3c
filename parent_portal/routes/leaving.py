"""A pupil leaving: office and admin staff set the leaving date and settle the balance
(refunded, or moved to a sibling's account); the account closes, the cards are retired and
the guardianships end on the leaving date (see cardpay.leaving)."""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import Session, select
from starlette.responses import RedirectResponse, Response

from cardpay import leaving
from cardpay.account_models import Tender
from cardpay.errors import LeavingError, MoneyInputError
from cardpay.models import Account
from cardpay.office import Actor
from parent_portal.access import StaffViewer, Viewer
from parent_portal.deps import LedgerSessionDep, SessionDep
from parent_portal.i18n import translator
from parent_portal.money_access import staff_pupil
from parent_portal.money_view import Formats, form_client_id, new_nonce
from parent_portal.routes.auth import client_ip
from parent_portal.templating import language_of, render
from school.models import Pupil, School

logger = logging.getLogger(__name__)
router = APIRouter()

FormText = Annotated[str, Form()]


def _page(request: Request, session: Session, viewer: Viewer, pupil: Pupil, *,
          error: str = "", status_code: int = 200) -> Response:
    school = session.get(School, pupil.school_id)
    assert school is not None
    account = session.exec(select(Account).where(Account.pupil_id == pupil.id)).first()
    return render(request, "staff_leave.html", {
        "pupil": pupil, "account": account, "fmt": Formats.of(request, school),
        "balance": account.balance_cents if account else 0,
        "siblings": leaving.siblings_of(session, pupil, viewer.today),
        "today": viewer.today, "tenders": list(Tender), "nonce": new_nonce, "error": error,
        "done": request.query_params.get("done", ""),
    }, status_code=status_code)


def _refused(request: Request, session: Session, viewer: Viewer, pupil: Pupil,
             exc: MoneyInputError) -> Response:
    session.rollback()
    logger.info("leaving form refused for pupil %s: %s", pupil.id, exc.code)
    t = translator(language_of(request))
    return _page(request, session, viewer, pupil, error=t(f"money.error.{exc.code}"),
                 status_code=400)


def _settlement(session: Session, how: str, tender: str, reason: str,
                sibling_id: str) -> leaving.Settlement | None:
    if how == "refund":
        try:
            chosen = Tender(tender)
        except ValueError as exc:
            raise LeavingError("leaving.settle", "unknown means of payment") from exc
        return leaving.Settlement(leaving.Settle.REFUND, reason=reason, tender=chosen)
    if how == "transfer":
        sibling = session.get(Pupil, int(sibling_id)) if sibling_id.isdigit() else None
        return leaving.Settlement(leaving.Settle.TRANSFER, reason=reason, sibling=sibling)
    return None


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise LeavingError("leaving.date", "not a date") from exc


@router.get("/staff/pupils/{pupil_id}/leave")
def leave_page(request: Request, pupil_id: int, viewer: StaffViewer,
               session: SessionDep) -> Response:
    pupil, _ = staff_pupil(request, session, viewer, pupil_id, move=True)
    return _page(request, session, viewer, pupil)


@router.post("/staff/pupils/{pupil_id}/leave")
def leave(request: Request, pupil_id: int, viewer: StaffViewer, session: SessionDep,
          ledger: LedgerSessionDep, left_on: FormText = "", how: FormText = "",
          tender: FormText = "cash", reason: FormText = "", sibling: FormText = "",
          nonce: FormText = "") -> Response:
    pupil, _ = staff_pupil(request, session, viewer, pupil_id, move=True)
    client_id = form_client_id("leaving", viewer.user_id, nonce)
    try:
        leaving.close_account(
            session=ledger, pupil=pupil, left_on=_date(left_on),
            settlement=_settlement(ledger, how, tender, reason, sibling), client_id=client_id,
            actor=Actor(user_id=viewer.user_id, ip=client_ip(request)),
            today=viewer.today, clock=request.app.state.clock)
    except MoneyInputError as exc:
        return _refused(request, session, viewer, pupil, exc)
    return RedirectResponse(f"/staff/pupils/{pupil_id}/leave?done=closed", status_code=303)


@router.post("/staff/pupils/{pupil_id}/leave/settle")
def settle(request: Request, pupil_id: int, viewer: StaffViewer, session: SessionDep,
           ledger: LedgerSessionDep, how: FormText = "", tender: FormText = "cash",
           reason: FormText = "", sibling: FormText = "", nonce: FormText = "") -> Response:
    pupil, _ = staff_pupil(request, session, viewer, pupil_id, move=True)
    client_id = form_client_id("leaving-settle", viewer.user_id, nonce)
    try:
        settlement = _settlement(ledger, how, tender, reason, sibling)
        if settlement is None:
            raise LeavingError("leaving.settle", "say how the balance is given back")
        leaving.settle_closed(
            session=ledger, pupil=pupil, settlement=settlement, client_id=client_id,
            actor=Actor(user_id=viewer.user_id, ip=client_ip(request)),
            today=viewer.today, clock=request.app.state.clock)
    except MoneyInputError as exc:
        return _refused(request, session, viewer, pupil, exc)
    return RedirectResponse(f"/staff/pupils/{pupil_id}/leave?done=settled", status_code=303)
