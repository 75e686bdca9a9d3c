"""Parents' lunch-account pages: their own children only; balance and history in their
language and the school's time; the daily limit; a lost card; topping up online."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, col, select

from cardpay import cards, office
from cardpay.account_models import LunchSettings, Tender, TopUpIntent
from cardpay.errors import CardNotUsableError
from cardpay.models import Card, CardKind, CardStatus
from cardpay.payments.demo import SIGNATURE_HEADER, DemoProvider
from cardpay.payments.registry import demo_secret
from cardpay.rules import CanteenRules, PupilState, Reason, decide
from school.models import AuditEvent
from school.settings import Settings
from tests import factories
from tests.factories import SmallSchool
from tests.parent_portal.conftest import TestClient, signed_in
from tests.parent_portal.forms import hidden_fields, submit


def _account(pupil_id: int | None) -> str:
    return f"/parent/children/{pupil_id}/account"


def _balance(session: Session, school: SmallSchool, index: int = 0) -> int:
    return factories.balance_of(session, school.pupils[index])


@pytest.fixture
def history(session: Session, small_school: SmallSchool) -> SmallSchool:
    """Léa: 30.00 handed in at the office on Monday, lunch on Monday and Tuesday, 5.00
    given back."""
    lea = small_school.pupils[0]
    actor = office.Actor(user_id=small_school.office.id or 0)
    monday = datetime(2026, 11, 23, 7, 45, tzinfo=UTC)
    office.office_topup(session=session, pupil=lea, amount_cents=3000, tender=Tender.CASH,
                        client_id="f1", actor=actor, clock=lambda: monday)
    factories.meal(session, lea, 350, at=datetime(2026, 11, 23, 11, 5, tzinfo=UTC))
    factories.meal(session, lea, 350, at=datetime(2026, 11, 24, 11, 10, tzinfo=UTC))
    office.refund(session=session, pupil=lea, amount_cents=500, tender=Tender.CASH,
                  reason="trop versé", client_id="r1", actor=actor,
                  clock=lambda: datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    return small_school


def test_a_parent_sees_balance_and_history_in_local_time(
    client: TestClient, history: SmallSchool
) -> None:
    lea = history.pupils[0]
    signed_in(client, "parent@example.org")
    assert _account(lea.id) in client.get(f"/parent/children/{lea.id}").text
    page = client.get(_account(lea.id)).text
    assert '<strong id="balance" class="">18,00\u00a0€</strong>' in page
    rows = [re.sub(r"[ \n]+", " ", r) for r in page.split("<tr")[2:]]
    assert rows[0].startswith('> <td>24/11/2026 16:00</td> <td> <span class="kind kind-refund">'
                              'Remboursement</span>')
    assert "trop versé" in rows[0]
    assert "24/11/2026 12:10" in rows[1]
    assert "Repas" in rows[1]
    assert "\u22123,50\u00a0€" in rows[1]
    assert "reçu n° 1" in rows[3]
    assert "+" not in rows[3]
    english = client.get(_account(lea.id) + "?lang=en").text
    assert "€18.00" in english
    assert "24 Nov 2026, 12:10" in english


def test_other_families_children_are_not_found_and_nothing_changes(
    client: TestClient, history: SmallSchool, session: Session
) -> None:
    lea = history.pupils[0]
    card = cards.issue_card(session=session, pupil=lea, uid="A1B2C3D4", kind=CardKind.UID)
    signed_in(client, "other@example.org")
    token = hidden_fields(client.get("/parent").text, "/logout")["csrf_token"]
    assert client.get(_account(lea.id)).status_code == 404
    assert client.get(_account(999999)).status_code == 404
    for action, data in ((f"/parent/children/{lea.id}/settings", {"daily_limit": "0"}),
                         (f"/parent/children/{lea.id}/cards/{card.id}/lost", {}),
                         (f"/parent/children/{lea.id}/topup", {"amount": "20"})):
        assert client.post(action, data={"csrf_token": token, **data}).status_code == 404
    hugo = history.pupils[1]
    own_page_other_card = client.post(f"/parent/children/{hugo.id}/cards/{card.id}/lost",
                                      data={"csrf_token": token})
    assert own_page_other_card.status_code == 404
    session.rollback()
    assert session.get(Card, card.id).status is CardStatus.ACTIVE  # type: ignore[union-attr]
    assert session.get(LunchSettings, lea.id) is None
    assert session.exec(select(TopUpIntent)).first() is None
    denied = session.exec(select(AuditEvent).where(AuditEvent.action == "access.denied")).all()
    assert len(denied) == 6


def test_the_daily_limit_is_stored_where_the_till_reads_it(
    client: TestClient, history: SmallSchool, session: Session
) -> None:
    lea = history.pupils[0]
    signed_in(client, "parent@example.org")
    saved = submit(client, _account(lea.id), f"/parent/children/{lea.id}/settings",
                   daily_limit="3", alert_below="8,50")
    assert saved.status_code == 303
    session.rollback()
    settings = session.get(LunchSettings, lea.id)
    assert settings is not None
    assert (settings.daily_limit_cents, settings.low_balance_alert_cents) == (300, 850)
    state = PupilState(card_status=CardStatus.ACTIVE, tariff_band="", balance_cents=1800,
                       daily_limit_cents=settings.daily_limit_cents)
    tuesday_noon = datetime(2026, 11, 24, 11, 30, tzinfo=UTC)
    assert decide(CanteenRules(), state, tuesday_noon).reason is Reason.DAILY_LIMIT
    page = client.get(_account(lea.id)).text
    assert 'value="3.00"' in page
    bad = submit(client, _account(lea.id), f"/parent/children/{lea.id}/settings",
                 daily_limit="2,505", alert_below="")
    assert bad.status_code == 400
    cleared = submit(client, _account(lea.id), f"/parent/children/{lea.id}/settings",
                     daily_limit="", alert_below="")
    assert cleared.status_code == 303
    session.rollback()
    assert session.get(LunchSettings, lea.id).daily_limit_cents is None  # type: ignore[union-attr]
    assert [e.detail["after"] for e in session.exec(
        select(AuditEvent).where(AuditEvent.action == "lunch.settings")
        .order_by(col(AuditEvent.id)))] == [[300, 850], [None, None]]


def test_a_card_reported_lost_is_refused_at_once(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    lea = small_school.pupils[0]
    card = cards.issue_card(session=session, pupil=lea, uid="04A1B2C3D4E5F6",
                            kind=CardKind.NTAG424)
    signed_in(client, "parent@example.org")
    lost = submit(client, _account(lea.id), f"/parent/children/{lea.id}/cards/{card.id}/lost")
    assert lost.status_code == 303
    session.rollback()
    tapped = session.get(Card, card.id)
    assert tapped is not None
    assert tapped.status is CardStatus.LOST
    with pytest.raises(CardNotUsableError):
        cards.check_usable(tapped)
    assert session.exec(select(AuditEvent.actor_user_id).where(
        AuditEvent.action == "card.lost")).all() == [small_school.parent.id]
    page = client.get(_account(lea.id)).text
    assert "perdue" in page
    assert f"/cards/{card.id}/lost" not in page


def test_a_demo_top_up_end_to_end_credits_once(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    lea = small_school.pupils[0]
    signed_in(client, "parent@example.org")
    started = submit(client, _account(lea.id), f"/parent/children/{lea.id}/topup",
                     amount="20")
    assert started.status_code == 303
    checkout_url = started.headers["location"]
    assert checkout_url.startswith("/payments/demo/ecole-")
    checkout = client.get(checkout_url)
    assert checkout.status_code == 200
    assert '<p class="amount" id="amount">20,00\u00a0€</p>' in checkout.text
    assert "Payer (démo)" in checkout.text
    path = checkout_url.split("?")[0]
    fields = hidden_fields(checkout.text, f"{path}/pay")
    paid = client.post(f"{path}/pay", data=fields)
    assert paid.headers["location"] == f"{_account(lea.id)}?topup=paid"
    again = client.post(f"{path}/pay", data=fields)
    assert again.status_code == 303
    assert _balance(session, small_school) == 2000
    assert "20,00\u00a0€" in client.get(paid.headers["location"]).text


def test_an_out_of_bounds_online_amount_is_refused(client: TestClient,
                                                   small_school: SmallSchool) -> None:
    lea = small_school.pupils[0]
    signed_in(client, "parent@example.org")
    for amount in ("0,50", "501", "-20", "20.001"):
        refused = submit(client, _account(lea.id), f"/parent/children/{lea.id}/topup",
                         amount=amount)
        assert refused.status_code == 400, amount


def test_only_the_payer_sees_a_demo_checkout(client: TestClient, small_school: SmallSchool,
                                             session: Session) -> None:
    lea = small_school.pupils[0]
    signed_in(client, "parent@example.org")
    url = submit(client, _account(lea.id), f"/parent/children/{lea.id}/topup",
                 amount="20").headers["location"]
    client.cookies.clear()
    signed_in(client, "other@example.org")
    assert client.get(url).status_code == 404


def _webhook(settings: Settings, intent: str, cents: int, secret: str | None = None):  # type: ignore[no-untyped-def]
    demo = DemoProvider(secret=secret or demo_secret(settings))
    body, signature = demo.webhook_for(intent, cents, "EUR")
    return body, {SIGNATURE_HEADER: signature, "content-type": "application/json"}


def test_the_webhook_endpoint_believes_only_signed_matching_payments(
    client: TestClient, small_school: SmallSchool, session: Session, settings: Settings
) -> None:
    lea = small_school.pupils[0]
    signed_in(client, "parent@example.org")
    intent = submit(client, _account(lea.id), f"/parent/children/{lea.id}/topup",
                    amount="25").headers["location"].split("/")[3].split("?")[0]
    client.cookies.clear()  # a provider has no session and no CSRF token

    forged = client.post("/payments/webhook/demo",
                         content=_webhook(settings, intent, 2500, secret="x" * 40)[0],
                         headers=_webhook(settings, intent, 2500, secret="x" * 40)[1])
    assert forged.status_code == 400
    body, headers = _webhook(settings, intent, 250000)
    assert client.post("/payments/webhook/demo", content=body, headers=headers).status_code == 400
    body, headers = _webhook(settings, "ecole-nobody", 2500)
    assert client.post("/payments/webhook/demo", content=body, headers=headers).status_code == 400
    assert _balance(session, small_school) == 0

    body, headers = _webhook(settings, intent, 2500)
    first = client.post("/payments/webhook/demo", content=body, headers=headers)
    replayed = client.post("/payments/webhook/demo", content=body, headers=headers)
    assert (first.status_code, first.json()) == (200, {"status": "credited"})
    assert (replayed.status_code, replayed.json()) == (200, {"status": "duplicate"})
    assert client.post("/payments/webhook/stripe", content=body,
                       headers=headers).status_code == 404
    assert _balance(session, small_school) == 2500
    refusals = session.exec(select(AuditEvent).where(AuditEvent.action == "topup.refused")).all()
    assert sorted(e.detail["problem"] for e in refusals) == [
        "amount 250000 EUR instead of 2500 EUR", "unknown intent"]
    assert json.loads(body)["intent_id"] == intent


def test_a_stripe_webhook_credits_through_the_same_endpoint(
    settings: Settings, engine: object, clock: object, small_school: SmallSchool,
    session: Session
) -> None:
    import hashlib
    import hmac
    import time

    from parent_portal.app import create_app

    stripe = settings.model_copy(update={"payment_provider": "stripe",
                                         "stripe_api_key": "sk_test_x",
                                         "stripe_webhook_secret": "whsec_test"})
    app = create_app(stripe, engine, clock=clock)  # type: ignore[arg-type]
    lea = small_school.pupils[0]
    session.add(TopUpIntent(intent_id="ecole-s1", school_id=lea.school_id, pupil_id=lea.id,  # type: ignore[arg-type]
                            user_id=small_school.parent.id, provider="stripe",  # type: ignore[arg-type]
                            provider_ref="cs_test_1", amount_cents=3000, currency="EUR",
                            status="pending"))  # type: ignore[arg-type]
    session.commit()
    body = json.dumps({"id": "evt_1", "object": "event", "type": "checkout.session.completed",
                       "data": {"object": {
                           "id": "cs_test_1", "object": "checkout.session",
                           "payment_status": "paid", "amount_total": 3000, "currency": "eur",
                           "metadata": {"intent_id": "ecole-s1"}}}}).encode()
    stamp = int(time.time())
    mac = hmac.new(b"whsec_test", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    with TestClient(app) as client:
        answer = client.post("/payments/webhook/stripe", content=body,
                             headers={"Stripe-Signature": f"t={stamp},v1={mac}"})
        assert "https://checkout.stripe.com" in answer.headers["content-security-policy"]
        assert client.post("/payments/webhook/demo", content=body).status_code == 404
    assert answer.json() == {"status": "credited"}
    assert factories.balance_of(session, lea) == 3000
