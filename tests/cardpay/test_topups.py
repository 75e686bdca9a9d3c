"""Online top-ups: an intent, a checkout, and a webhook believed only when it matches."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, col, select

from cardpay import topups
from cardpay.account_models import IntentStatus, TopUpIntent
from cardpay.accounts import pupil_account
from cardpay.ledger import check_integrity
from cardpay.models import LedgerTransaction
from cardpay.payments.base import PaymentConfirmed, WebhookRejected
from cardpay.payments.demo import DemoProvider
from school.models import AuditEvent
from tests import factories
from tests.factories import SmallSchool

URLS = topups.CheckoutUrls(success="/parent/ok", cancel="/parent/cancel")


@pytest.fixture
def demo() -> DemoProvider:
    return DemoProvider(secret="s" * 32)


def _start(session: Session, school: SmallSchool, demo: DemoProvider,
           cents: int = 2000) -> TopUpIntent:
    intent, url = topups.start_topup(session=session, provider=demo, pupil=school.pupils[0],
                                     payer=school.parent, amount_cents=cents, urls=URLS)
    assert url.startswith(f"/payments/demo/{intent.intent_id}?")
    return intent


def _paid(demo: DemoProvider, intent_id: str, cents: int,
          currency: str = "EUR") -> PaymentConfirmed:
    body, signature = demo.webhook_for(intent_id, cents, currency)
    paid = demo.parse_webhook(body, {"moulin-demo-signature": signature})
    assert paid is not None
    return paid


def _balance(session: Session, school: SmallSchool) -> int:
    session.rollback()
    return pupil_account(session=session, pupil=school.pupils[0]).balance_cents


def _refusals(session: Session) -> list[str]:
    session.rollback()
    return [e.detail["problem"] for e in session.exec(
        select(AuditEvent).where(AuditEvent.action == "topup.refused")
        .order_by(col(AuditEvent.id)))]


def test_a_genuine_payment_credits_once(session: Session, small_school: SmallSchool,
                                        demo: DemoProvider) -> None:
    intent = _start(session, small_school, demo)
    assert intent.status is IntentStatus.PENDING
    assert intent.provider_ref == f"demo_{intent.intent_id}"
    paid = _paid(demo, intent.intent_id, 2000)
    first = topups.confirm(session, provider="demo", paid=paid)
    again = topups.confirm(session, provider="demo", paid=_paid(demo, intent.intent_id, 2000))
    assert not first.replayed
    assert again.replayed
    assert _balance(session, small_school) == 2000
    session.refresh(intent)
    assert (intent.status, intent.client_id) == (IntentStatus.PAID, paid.client_id)
    assert check_integrity(session) == []


@pytest.mark.parametrize(("change", "problem"), [
    ({"intent_id": "ecole-unknown"}, "unknown intent"),
    ({"cents": 20000}, "amount 20000 EUR instead of 2000 EUR"),
    ({"currency": "USD"}, "amount 2000 USD instead of 2000 EUR"),
    ({"provider": "stripe"}, "intent made with demo, paid through stripe"),
])
def test_a_payment_that_does_not_match_is_refused_and_audited(
    session: Session, small_school: SmallSchool, demo: DemoProvider,
    change: dict[str, object], problem: str,
) -> None:
    intent = _start(session, small_school, demo)
    paid = _paid(demo, str(change.get("intent_id", intent.intent_id)),
                 int(change.get("cents", 2000)),  # type: ignore[call-overload]
                 str(change.get("currency", "EUR")))
    with pytest.raises(topups.PaymentRefused):
        topups.confirm(session, provider=str(change.get("provider", "demo")), paid=paid)
    assert _balance(session, small_school) == 0
    assert _refusals(session) == [problem]
    assert session.exec(select(LedgerTransaction)).first() is None


def test_a_payment_for_another_schools_intent_is_refused(
    session: Session, small_school: SmallSchool, demo: DemoProvider
) -> None:
    intent = _start(session, small_school, demo)
    elsewhere = factories.school(session, slug="autre", name="Autre école")
    intent.school_id = elsewhere.id  # type: ignore[assignment]
    session.add(intent)
    session.commit()
    with pytest.raises(topups.PaymentRefused):
        topups.confirm(session, provider="demo", paid=_paid(demo, intent.intent_id, 2000))
    assert _refusals(session) == ["pupil not of the intent's school"]
    assert _balance(session, small_school) == 0


def test_a_forged_or_altered_webhook_is_rejected(demo: DemoProvider) -> None:
    body, signature = demo.webhook_for("ecole-x", 2000, "EUR")
    forged = DemoProvider(secret="t" * 32).webhook_for("ecole-x", 2000, "EUR")[1]
    altered = json.dumps({**json.loads(body), "amount_cents": 20000}).encode()
    for payload, header in ((body, forged), (altered, signature), (body, "")):
        with pytest.raises(WebhookRejected):
            demo.parse_webhook(payload, {"moulin-demo-signature": header})


def test_a_cancelled_checkout_is_still_credited_if_paid_late(
    session: Session, small_school: SmallSchool, demo: DemoProvider
) -> None:
    intent = _start(session, small_school, demo, cents=1500)
    topups.cancel(session, intent)
    assert intent.status is IntentStatus.CANCELLED
    topups.confirm(session, provider="demo", paid=_paid(demo, intent.intent_id, 1500))
    assert _balance(session, small_school) == 1500


def test_amounts_out_of_bounds_never_reach_the_provider(
    session: Session, small_school: SmallSchool, demo: DemoProvider
) -> None:
    for cents in (0, 50, 50_001):
        with pytest.raises(ValueError, match="top-up must be between"):
            _start(session, small_school, demo, cents=cents)
    assert session.exec(select(TopUpIntent)).first() is None
