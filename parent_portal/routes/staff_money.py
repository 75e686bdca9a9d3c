"""Staff money pages: a pupil's account, office top-ups with a printable receipt, refunds,
corrections and reversals. Cashiers see; office and admin staff move money."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlmodel import Session, col, select
from starlette.responses import RedirectResponse, Response

from cardpay import office
from cardpay.account_models import Receipt, Tender
from cardpay.errors import MoneyInputError
from cardpay.models import Account, LedgerTransaction, Posting
from cardpay.money import parse_amount
from parent_portal.access import StaffViewer, Viewer
from parent_portal.deps import LedgerSessionDep, SessionDep
from parent_portal.i18n import translator
from parent_portal.money_access import MOVE_MONEY, deny, money_roles, staff_pupil
from parent_portal.money_view import Formats, account_view, form_client_id, new_nonce
from parent_portal.routes.auth import client_ip
from parent_portal.routes.parent import classroom_names
from parent_portal.templating import language_of, render
from school.errors import InvalidInput
from school.models import Pupil, School, User

logger = logging.getLogger(__name__)
router = APIRouter()

FormText = Annotated[str, Form()]
DONE = ("refund", "correction", "reversal")


def _page(request: Request, session: Session, viewer: Viewer, pupil: Pupil, *,
          error: str = "", status_code: int = 200, done: str = "") -> Response:
    school = session.get(School, pupil.school_id)
    assert school is not None
    roles = money_roles(session, viewer.user_id, pupil.school_id)
    view = account_view(session, pupil)
    return render(request, "staff_pupil_money.html", {
        "pupil": pupil, "school": school, "view": view, "fmt": Formats.of(request, school),
        "rooms": classroom_names(session, [pupil]), "can_move": bool(roles & MOVE_MONEY),
        "nonce": new_nonce, "tenders": list(Tender), "error": error,
        "done": done if done in DONE else "",
    }, status_code=status_code)


@router.get("/staff/pupils/{pupil_id}/money")
def pupil_money(request: Request, pupil_id: int, viewer: StaffViewer,
                session: SessionDep, done: str = "") -> Response:
    """`done` names the notice to show after a form."""
    pupil, _ = staff_pupil(request, session, viewer, pupil_id)
    return _page(request, session, viewer, pupil, done=done)


def _refused(request: Request, session: Session, viewer: Viewer, pupil: Pupil,
             exc: MoneyInputError) -> Response:
    t = translator(language_of(request))
    logger.info("money form refused for pupil %s: %s", pupil.id, exc.code)
    session.rollback()
    return _page(request, session, viewer, pupil, error=t(f"money.error.{exc.code}"),
                 status_code=400)


def _actor(request: Request, viewer: Viewer) -> office.Actor:
    return office.Actor(user_id=viewer.user_id, ip=client_ip(request))


def _tender(value: str) -> Tender:
    try:
        return Tender(value)
    except ValueError as exc:
        raise InvalidInput("unknown means of payment") from exc


@router.post("/staff/pupils/{pupil_id}/topup")
def topup(request: Request, pupil_id: int, viewer: StaffViewer, session: SessionDep,
          ledger: LedgerSessionDep, amount: FormText = "", tender: FormText = "cash",
          reference: FormText = "", nonce: FormText = "") -> Response:
    pupil, _ = staff_pupil(request, session, viewer, pupil_id, move=True)
    client_id = form_client_id("office-topup", viewer.user_id, nonce)
    try:
        cents = parse_amount(amount, max_cents=office.OFFICE_MAX_TOPUP_CENTS)
        receipt = office.office_topup(
            session=ledger, pupil=pupil, amount_cents=cents, tender=_tender(tender),
            reference=reference, client_id=client_id, actor=_actor(request, viewer),
            clock=request.app.state.clock)
    except MoneyInputError as exc:
        return _refused(request, session, viewer, pupil, exc)
    return RedirectResponse(f"/staff/receipts/{receipt.id}", status_code=303)


@router.post("/staff/pupils/{pupil_id}/refund")
def refund(request: Request, pupil_id: int, viewer: StaffViewer, session: SessionDep,
           ledger: LedgerSessionDep, amount: FormText = "", tender: FormText = "cash",
           reason: FormText = "", nonce: FormText = "") -> Response:
    pupil, _ = staff_pupil(request, session, viewer, pupil_id, move=True)
    client_id = form_client_id("refund", viewer.user_id, nonce)
    try:
        cents = parse_amount(amount, max_cents=office.OFFICE_MAX_TOPUP_CENTS)
        office.refund(session=ledger, pupil=pupil, amount_cents=cents, tender=_tender(tender),
                      reason=reason, client_id=client_id, actor=_actor(request, viewer),
                      clock=request.app.state.clock)
    except MoneyInputError as exc:
        return _refused(request, session, viewer, pupil, exc)
    return RedirectResponse(f"/staff/pupils/{pupil_id}/money?done=refund", status_code=303)


@router.post("/staff/pupils/{pupil_id}/correction")
def correction(request: Request, pupil_id: int, viewer: StaffViewer, session: SessionDep,
               ledger: LedgerSessionDep, amount: FormText = "", direction: FormText = "",
               reason: FormText = "", nonce: FormText = "") -> Response:
    pupil, _ = staff_pupil(request, session, viewer, pupil_id, move=True)
    client_id = form_client_id("correction", viewer.user_id, nonce)
    if direction not in ("credit", "debit"):
        raise InvalidInput("a correction is a credit or a debit")
    try:
        cents = parse_amount(amount, max_cents=office.CORRECTION_MAX_CENTS)
        office.correct(session=ledger, pupil=pupil,
                       amount_cents=cents if direction == "credit" else -cents,
                       reason=reason, client_id=client_id, actor=_actor(request, viewer),
                       clock=request.app.state.clock)
    except MoneyInputError as exc:
        return _refused(request, session, viewer, pupil, exc)
    return RedirectResponse(f"/staff/pupils/{pupil_id}/money?done=correction", status_code=303)


@router.post("/staff/pupils/{pupil_id}/transactions/{transaction_id}/reverse")
def reverse(request: Request, pupil_id: int, transaction_id: int, viewer: StaffViewer,
            session: SessionDep, ledger: LedgerSessionDep, reason: FormText = "",
            nonce: FormText = "") -> Response:
    pupil, _ = staff_pupil(request, session, viewer, pupil_id, move=True)
    client_id = form_client_id("reversal", viewer.user_id, nonce)
    transaction = _pupils_transaction(request, session, viewer, pupil, transaction_id)
    try:
        office.reverse_mistake(session=ledger, transaction=transaction, reason=reason,
                               client_id=client_id, actor=_actor(request, viewer),
                               clock=request.app.state.clock)
    except MoneyInputError as exc:
        return _refused(request, session, viewer, pupil, exc)
    return RedirectResponse(f"/staff/pupils/{pupil_id}/money?done=reversal", status_code=303)


def _pupils_transaction(request: Request, session: Session, viewer: Viewer, pupil: Pupil,
                        transaction_id: int) -> LedgerTransaction:
    """A transaction that touched this pupil's account, or a 404."""
    txn = session.get(LedgerTransaction, transaction_id)
    touched = session.exec(
        select(Posting.id).join(Account, col(Account.id) == col(Posting.account_id))
        .where(Posting.transaction_id == transaction_id, Account.pupil_id == pupil.id)
    ).first()
    if txn is None or touched is None:
        raise deny(request, session, viewer, "transaction", transaction_id, "staff.reverse")
    return txn


@router.get("/staff/receipts/{receipt_id}")
def receipt_page(request: Request, receipt_id: int, viewer: StaffViewer,
                 session: SessionDep) -> Response:
    receipt = session.get(Receipt, receipt_id)
    if receipt is None or not money_roles(session, viewer.user_id, receipt.school_id):
        raise deny(request, session, viewer, "receipt", receipt_id, "staff.receipt")
    pupil, _ = staff_pupil(request, session, viewer, receipt.pupil_id)
    school = session.get(School, receipt.school_id)
    assert school is not None
    clerk = session.get(User, receipt.issued_by_user_id) if receipt.issued_by_user_id else None
    context: dict[str, Any] = {
        "receipt": receipt, "pupil": pupil, "school": school, "clerk": clerk,
        "rooms": classroom_names(session, [pupil]), "fmt": Formats.of(request, school),
    }
    return render(request, "receipt.html", context)
