"""A payment provider for `moulin demo` and tests: no money moves, the flow is the real one.

The checkout page is Moulin's own (`/payments/demo/{intent}`); paying there sends a webhook
signed with the demo secret, which takes the same path as a real provider's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from urllib.parse import urlencode

from cardpay.payments.base import (
    Checkout,
    PaymentConfirmed,
    TopUpRequest,
    WebhookRejected,
    sign,
    verify_signature,
)

SIGNATURE_HEADER = "moulin-demo-signature"


class DemoProvider:
    name = "demo"

    def __init__(self, *, secret: str, checkout_path: str = "/payments/demo") -> None:
        self._secret = secret
        self._checkout_path = checkout_path

    def start_checkout(self, request: TopUpRequest) -> Checkout:
        query = urlencode(
            {
                "amount": request.amount_cents,
                "currency": request.currency,
                "next": request.success_url,
                "cancel": request.cancel_url,
            }
        )
        return Checkout(
            redirect_url=f"{self._checkout_path}/{request.intent_id}?{query}",
            provider_ref=f"demo_{request.intent_id}",
        )

    def webhook_for(self, intent_id: str, amount_cents: int, currency: str) -> tuple[bytes, str]:
        """The body and signature header the demo checkout page sends when 'paid'."""
        body = json.dumps(
            {
                "type": "payment.paid",
                "intent_id": intent_id,
                "amount_cents": amount_cents,
                "currency": currency,
            }
        ).encode()
        return body, sign(self._secret, body, int(time.time()))

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentConfirmed | None:
        header = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER)
        verify_signature(self._secret, payload, header)
        try:
            event = json.loads(payload)
            if event["type"] != "payment.paid":
                return None
            intent, amount = str(event["intent_id"]), event["amount_cents"]
            currency = str(event["currency"])
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected("the demo webhook body is malformed") from exc
        if type(amount) is not int or amount <= 0:
            raise WebhookRejected("the demo webhook's amount is not a positive integer")
        return PaymentConfirmed(
            client_id=f"demo:{intent}",
            intent_id=intent,
            provider_ref=f"demo_{intent}",
            amount_cents=amount,
            currency=currency.upper(),
        )
