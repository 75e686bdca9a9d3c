"""Parents' lunch-account pages for each of their children: balance and history, the
daily spending limit and alert threshold, reporting a card lost, topping up online."""

from __future__ import annotations

import logging
from typing import Annotated, cast

from fastapi import APIRouter, Form, Request
from sqlmodel import Session, select
from starlette.responses import RedirectResponse, Response

from cardpay import cards, topups
from cardpay.account_models import LunchSettings
from cardpay.alerts import threshold_for
from cardpay.errors import MoneyInputError
from cardpay.models import Card, CardStatus
from cardpay.money import parse_amount
from cardpay.payments.base import MAX_TOPUP_CENTS, MIN_TOPUP_CENTS, PaymentProvider
from parent_portal.access import Viewer, ViewerDep
from parent_portal.deps import LedgerSessionDep, SessionDep
from parent_portal.i18n import translator
from parent_portal.money_access import deny, own_child
from parent_portal.money_view import Formats, account_view
from parent_portal.routes.auth import client_ip
from parent_portal.routes.parent import classroom_names
from parent_portal.templating import language_of, render
from school import audit
from school.errors import NotFound
from school.models import Pupil, School

logger = logging.getLogger(__name__)
router = APIRouter()

FormText = Annotated[str, Form()]
MAX_DAILY_LIMIT_CENTS = 5_000
MAX_ALERT_CENTS = 10_000
TOPUP_CHOICES = (1000, 2000, 3000, 5000)
DONE = ("settings", "lost")
TOPUP_OUTCOMES = ("paid", "cancelled")


def _provider(request: Request) -> PaymentProvider | None:
    return cast(PaymentProvider | None, request.app.state.payment_provider)


def _page(request: Request, session: Session, pupil: Pupil, *, error: str = "",
          status_code: int = 200, done: str = "", topup: str = "") -> Response:
    school = session.get(School, pupil.school_id)
    assert school is not None
    return render(request, "parent_account.html", {
        "pupil": pupil, "school": school, "view": account_view(session, pupil),
        "fmt": Formats.of(request, school), "rooms": classroom_names(session, [pupil]),
        "threshold": threshold_for(session, pupil), "error": error,
        "online": _provider(request) is not None, "choices": TOPUP_CHOICES,
        "done": done if done in DONE else "",
        "topup": topup if topup in TOPUP_OUTCOMES else "",
    }, status_code=status_code)


def _refused(request: Request, session: Session, pupil: Pupil,
             exc: MoneyInputError) -> Response:
    session.rollback()
    t = translator(language_of(request))
    return _page(request, session, pupil, error=t(f"money.error.{exc.code}"), status_code=400)


@router.get("/parent/children/{pupil_id}/account")
def account(request: Request, pupil_id: int, viewer: ViewerDep, session: SessionDep,
            done: str = "", topup: str = "") -> Response:
    """`done` and `topup` name the notice to show after a form or a payment."""
    return _page(request, session, own_child(request, session, viewer, pupil_id),
                 done=done, topup=topup)


def _optional_cents(text: str, max_cents: int) -> int | None:
    return None if not text.strip() else parse_amount(text, max_cents=max_cents, min_cents=0)


@router.post("/parent/children/{pupil_id}/settings")
def save_settings(request: Request, pupil_id: int, viewer: ViewerDep, session: SessionDep,
                  ledger: LedgerSessionDep, daily_limit: FormText = "",
                  alert_below: FormText = "") -> Response:
    pupil = own_child(request, session, viewer, pupil_id)
    try:
        limit = _optional_cents(daily_limit, MAX_DAILY_LIMIT_CENTS)
        alert = _optional_cents(alert_below, MAX_ALERT_CENTS)
    except MoneyInputError as exc:
        return _refused(request, session, pupil, exc)
    row = ledger.get(LunchSettings, pupil_id) or LunchSettings(pupil_id=pupil_id)
    before = (row.daily_limit_cents, row.low_balance_alert_cents)
    row.daily_limit_cents, row.low_balance_alert_cents = limit, alert
    row.updated_at, row.updated_by_user_id = request.app.state.clock(), viewer.user_id
    ledger.add(row)
    audit.record(ledger, action="lunch.settings", school_id=pupil.school_id,
                 actor_user_id=viewer.user_id, target_type="pupil", target_id=pupil_id,
                 ip=client_ip(request), before=list(before), after=[limit, alert])
    ledger.commit()
    return RedirectResponse(f"/parent/children/{pupil_id}/account?done=settings",
                            status_code=303)


@router.post("/parent/children/{pupil_id}/cards/{card_id}/lost")
def report_lost(request: Request, pupil_id: int, card_id: int, viewer: ViewerDep,
                session: SessionDep, ledger: LedgerSessionDep) -> Response:
    own_child(request, session, viewer, pupil_id)
    card = _childs_card(request, session, viewer, pupil_id, card_id)
    if card.status in (CardStatus.ACTIVE, CardStatus.BLOCKED):
        live = ledger.get(Card, card.id)
        assert live is not None
        cards.mark_lost(session=ledger, card=live, actor_user_id=viewer.user_id)
        logger.info("parent %s reported card %s lost", viewer.user_id, card.id)
    return RedirectResponse(f"/parent/children/{pupil_id}/account?done=lost", status_code=303)


def _childs_card(request: Request, session: Session, viewer: Viewer, pupil_id: int,
                 card_id: int) -> Card:
    card = session.exec(select(Card).where(Card.id == card_id,
                                           Card.pupil_id == pupil_id)).first()
    if card is None:
        raise deny(request, session, viewer, "card", card_id, "parent.card")
    return card


@router.post("/parent/children/{pupil_id}/topup")
def start_topup(request: Request, pupil_id: int, viewer: ViewerDep, session: SessionDep,
                ledger: LedgerSessionDep, amount: FormText = "") -> Response:
    pupil = own_child(request, session, viewer, pupil_id)
    provider = _provider(request)
    if provider is None:
        raise NotFound("online top-ups are not offered here")
    back = f"{str(request.base_url).rstrip('/')}/parent/children/{pupil_id}/account"
    try:
        cents = parse_amount(amount, max_cents=MAX_TOPUP_CENTS, min_cents=MIN_TOPUP_CENTS)
        _, url = topups.start_topup(
            session=ledger, provider=provider, pupil=pupil, payer=viewer.user,
            amount_cents=cents, urls=topups.CheckoutUrls(success=f"{back}?topup=paid",
                                                         cancel=f"{back}?topup=cancelled"),
            clock=request.app.state.clock)
    except MoneyInputError as exc:  # a bad amount, or the pupil has left
        return _refused(request, session, pupil, exc)
    return RedirectResponse(url, status_code=303)
