"""Stripe Checkout through the official `stripe` package; webhooks verified by signature."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import stripe

from cardpay.payments.base import (
    Checkout,
    CheckoutFailed,
    PaymentConfirmed,
    TopUpRequest,
    WebhookRejected,
)

logger = logging.getLogger(__name__)

_PAID_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}


class StripeCheckout:
    name = "stripe"

    def __init__(self, *, api_key: str, webhook_secret: str, api_base: str | None = None) -> None:
        base = {"api": api_base} if api_base else None
        self._client = stripe.StripeClient(api_key, base_addresses=base, max_network_retries=2)  # type: ignore[arg-type]
        self._webhook_secret = webhook_secret

    def start_checkout(self, request: TopUpRequest) -> Checkout:
        params: Any = {
            "mode": "payment",
            "customer_email": request.payer_email,
            "client_reference_id": request.intent_id,
            "metadata": {"intent_id": request.intent_id, "pupil_id": str(request.pupil_id)},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": request.amount_cents,
                        "product_data": {"name": request.description},
                    },
                }
            ],
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        try:
            session = self._client.v1.checkout.sessions.create(
                params=params, options={"idempotency_key": request.intent_id}
            )
        except stripe.StripeError as exc:
            logger.warning("Stripe refused a checkout: %s", exc.user_message or exc)
            raise CheckoutFailed("the payment service is unavailable; try again later") from exc
        if not session.url:
            raise CheckoutFailed("the payment service returned no checkout page")
        return Checkout(redirect_url=session.url, provider_ref=session.id)

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentConfirmed | None:
        signature = {k.lower(): v for k, v in headers.items()}.get("stripe-signature")
        try:
            event = stripe.Webhook.construct_event(payload, signature, self._webhook_secret)
        except stripe.SignatureVerificationError as exc:
            raise WebhookRejected("the Stripe signature does not match") from exc
        except ValueError as exc:
            raise WebhookRejected("the webhook body is not a Stripe event") from exc
        if event.type not in _PAID_EVENTS:
            return None
        return _confirmed(json.loads(payload)["data"]["object"])


def _confirmed(session: dict[str, Any]) -> PaymentConfirmed | None:
    if session.get("payment_status") != "paid":
        return None  # e.g. a bank debit still on its way: its success comes as another event
    try:
        intent = session["metadata"]["intent_id"]
        amount = session["amount_total"]
        currency = session["currency"]
    except (KeyError, TypeError) as exc:
        raise WebhookRejected("the checkout session lacks our reference or its amount") from exc
    if type(amount) is not int or amount <= 0:
        raise WebhookRejected("the checkout session's amount is not a positive integer")
    # Keyed on the checkout session, not the event: the two paid events of one session
    # (completed, then async success) must credit once.
    return PaymentConfirmed(
        client_id=f"stripe:{session['id']}",
        intent_id=str(intent),
        provider_ref=str(session["id"]),
        amount_cents=amount,
        currency=str(currency).upper(),
    )
