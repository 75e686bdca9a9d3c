"""The demo payment provider's checkout page: the amount, 'Pay (demo)' and 'Cancel'.

Paying sends the demo provider's signed webhook through the same handler as a real
provider's (`parent_portal.webhooks.process`), so the demo shows the real flow. Only the
parent who started a top-up sees its page; the page exists only with the demo provider.
"""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from cardpay import topups
from cardpay.account_models import IntentStatus, TopUpIntent
from cardpay.payments.demo import SIGNATURE_HEADER, DemoProvider
from parent_portal import webhooks
from parent_portal.access import Viewer, ViewerDep
from parent_portal.deps import LedgerSessionDep, SessionDep
from parent_portal.errors import Forbidden
from parent_portal.money_access import deny
from parent_portal.money_view import Formats
from parent_portal.templating import render
from school.errors import NotFound
from school.models import Pupil, School

router = APIRouter()


def _demo(request: Request) -> DemoProvider:
    provider = request.app.state.payment_provider
    if not isinstance(provider, DemoProvider):
        raise NotFound("the demo payment page exists only with the demo provider")
    return provider


def _own_intent(request: Request, session: Session, viewer: Viewer,
                intent_id: str) -> TopUpIntent:
    intent = topups.find_intent(session, intent_id)
    if intent is None or intent.user_id != viewer.user_id:
        raise deny(request, session, viewer, "topup_intent", 0, "payments.demo")
    return intent


def _back(intent: TopUpIntent, outcome: str) -> str:
    return f"/parent/children/{intent.pupil_id}/account?topup={outcome}"


@router.get("/payments/demo/{intent_id}")
def checkout(request: Request, intent_id: str, viewer: ViewerDep,
             session: SessionDep) -> Response:
    _demo(request)
    intent = _own_intent(request, session, viewer, intent_id)
    pupil = session.get(Pupil, intent.pupil_id)
    school = session.get(School, intent.school_id)
    assert pupil is not None
    assert school is not None
    return render(request, "demo_checkout.html", {
        "intent": intent, "pupil": pupil, "school": school,
        "fmt": Formats.of(request, school), "pending": intent.status is IntentStatus.PENDING,
    })


@router.post("/payments/demo/{intent_id}/pay")
def pay(request: Request, intent_id: str, viewer: ViewerDep, session: SessionDep) -> Response:
    provider = _demo(request)
    intent = _own_intent(request, session, viewer, intent_id)
    body, signature = provider.webhook_for(intent.intent_id, intent.amount_cents,
                                           intent.currency)
    session.rollback()  # hold no snapshot while the webhook writes
    status, _ = webhooks.process(cast(Engine, request.app.state.engine), provider, body,
                                 {SIGNATURE_HEADER: signature}, request.app.state.clock)
    if status != 200:
        raise Forbidden("the demo payment was refused")
    return RedirectResponse(_back(intent, "paid"), status_code=303)


@router.post("/payments/demo/{intent_id}/cancel")
def cancel(request: Request, intent_id: str, viewer: ViewerDep, session: SessionDep,
           ledger: LedgerSessionDep) -> Response:
    _demo(request)
    intent = _own_intent(request, session, viewer, intent_id)
    live = ledger.get(TopUpIntent, intent.id)
    assert live is not None
    topups.cancel(ledger, live)
    return RedirectResponse(_back(intent, "cancelled"), status_code=303)
