"""Online top-ups: a parent's intent, the provider's checkout, and the webhook that
credits the account once.

An intent is written before the checkout starts; a webhook is believed only when its
signature is good (the provider checks it) and it matches an intent of ours: the same
provider, checkout, amount and currency, for a pupil still of the intent's school.
Anything else is refused, logged and audited, and credits nothing. The credit is posted
with the payment's client id, so a webhook delivered twice (or the demo page's and the
provider's) posts once.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from sqlmodel import Session, select

from cardpay import alerts
from cardpay.account_models import IntentStatus, TopUpIntent
from cardpay.accounts import check_open, pupil_account, school_account
from cardpay.errors import CardPayError
from cardpay.ledger import Posted, post
from cardpay.models import AccountKind, TransactionKind
from cardpay.payments.base import (
    PaymentConfirmed,
    PaymentError,
    PaymentProvider,
    TopUpRequest,
)
from school import audit
from school.clock import Clock, utcnow
from school.models import Pupil, School, User

logger = logging.getLogger(__name__)


class PaymentRefused(PaymentError):
    """A genuine-looking payment that does not match what we asked for."""


@dataclass(frozen=True)
class CheckoutUrls:
    success: str
    cancel: str


def start_topup(
    *, session: Session, provider: PaymentProvider, pupil: Pupil, payer: User,
    amount_cents: int, urls: CheckoutUrls, clock: Clock = utcnow,
) -> tuple[TopUpIntent, str]:
    """Record the intent, start the provider's checkout; return the intent and the URL
    to send the parent to. Commits the intent before talking to the provider, so a
    payment made there always finds it."""
    school = session.get(School, pupil.school_id)
    assert school is not None
    assert payer.id is not None
    check_open(session, pupil)
    intent_id = f"{school.slug[:20]}-{secrets.token_urlsafe(18)}"
    request = TopUpRequest(
        intent_id=intent_id, pupil_id=pupil.id or 0, amount_cents=amount_cents,
        description=f"Cantine — {pupil.full_name}", currency=school.currency,
        payer_email=payer.email, success_url=urls.success, cancel_url=urls.cancel,
    )  # validates the amount before anything is written
    intent = TopUpIntent(intent_id=intent_id, school_id=school.id, pupil_id=pupil.id,  # type: ignore[arg-type]
                         user_id=payer.id, provider=provider.name, amount_cents=amount_cents,
                         currency=school.currency, status=IntentStatus.PENDING,
                         created_at=clock())
    session.add(intent)
    audit.record(session, action="topup.start", school_id=school.id, actor_user_id=payer.id,
                 target_type="pupil", target_id=pupil.id or "", amount_cents=amount_cents,
                 provider=provider.name, intent=intent_id)
    session.commit()
    checkout = provider.start_checkout(request)  # CheckoutFailed: the intent stays pending
    intent.provider_ref = checkout.provider_ref
    session.add(intent)
    session.commit()
    return intent, checkout.redirect_url


def find_intent(session: Session, intent_id: str) -> TopUpIntent | None:
    return session.exec(select(TopUpIntent).where(TopUpIntent.intent_id == intent_id)).first()


def confirm(session: Session, *, provider: str, paid: PaymentConfirmed,
            clock: Clock = utcnow) -> Posted:
    """Credit the intent's pupil with a confirmed payment, once. PaymentRefused when it
    does not match an intent of ours. Give it a session from `immediate_session`."""
    intent = find_intent(session, paid.intent_id)
    problem = _mismatch(session, intent, provider, paid)
    if problem is not None:
        _refuse(session, intent, provider, paid, problem)
    assert intent is not None
    pupil = session.get(Pupil, intent.pupil_id)
    assert pupil is not None
    account = pupil_account(session=session, pupil=pupil)
    clearing = school_account(session=session, school_id=intent.school_id,
                              kind=AccountKind.ONLINE_CLEARING)
    if intent.status is not IntentStatus.PAID:
        intent.status, intent.paid_at, intent.client_id = IntentStatus.PAID, clock(), paid.client_id
        session.add(intent)
    try:
        posted = post(session=session, school_id=intent.school_id, kind=TransactionKind.TOPUP,
                      client_id=paid.client_id, memo=f"online top-up {intent.intent_id}",
                      legs=[(clearing, -paid.amount_cents), (account, paid.amount_cents)],
                      actor_user_id=intent.user_id, clock=clock)
    except CardPayError:
        session.rollback()
        raise
    if not posted.replayed:
        logger.info("online top-up %s credited %s cents", intent.intent_id, paid.amount_cents)
        session.refresh(account)
        alerts.after_credit(session, pupil_id=pupil.id or 0,
                            new_balance_cents=account.balance_cents, clock=clock)
        session.commit()
    return posted


def _mismatch(session: Session, intent: TopUpIntent | None, provider: str,
              paid: PaymentConfirmed) -> str | None:
    if intent is None:
        return "unknown intent"
    if intent.provider != provider:
        return f"intent made with {intent.provider}, paid through {provider}"
    if intent.provider_ref and intent.provider_ref != paid.provider_ref:
        return "payment for another checkout"
    if (intent.amount_cents, intent.currency.upper()) != (paid.amount_cents, paid.currency):
        return (f"amount {paid.amount_cents} {paid.currency} instead of "
                f"{intent.amount_cents} {intent.currency}")
    if intent.client_id is not None and intent.client_id != paid.client_id:
        return "intent already paid by another payment"
    pupil = session.get(Pupil, intent.pupil_id)
    if pupil is None or pupil.school_id != intent.school_id:
        return "pupil not of the intent's school"
    return None


def _refuse(session: Session, intent: TopUpIntent | None, provider: str,
            paid: PaymentConfirmed, problem: str) -> None:
    session.rollback()
    logger.warning("refused %s payment %s for intent %.40s: %s", provider, paid.provider_ref,
                   paid.intent_id, problem)
    audit.record(session, action="topup.refused", school_id=intent.school_id if intent else None,
                 target_type="topup_intent", target_id=intent.id or "" if intent else "",
                 provider=provider, provider_ref=paid.provider_ref[:100],
                 intent=paid.intent_id[:64], amount_cents=paid.amount_cents,
                 currency=paid.currency[:3], problem=problem)
    session.commit()
    raise PaymentRefused(problem)


def cancel(session: Session, intent: TopUpIntent) -> None:
    """The parent gave up at the checkout; a late payment would still be credited."""
    if intent.status is IntentStatus.PENDING:
        intent.status = IntentStatus.CANCELLED
        session.add(intent)
        session.commit()
