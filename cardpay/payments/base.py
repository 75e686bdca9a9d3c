"""What every payment provider offers: start a checkout, and turn a webhook into a fact.

PaymentError
├── CheckoutFailed     the provider would not start a checkout
└── WebhookRejected    a webhook whose signature, age or content is not acceptable
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

MIN_TOPUP_CENTS = 100
MAX_TOPUP_CENTS = 50_000
WEBHOOK_TOLERANCE_S = 300


class PaymentError(Exception):
    """Base of the payment errors."""


class CheckoutFailed(PaymentError):
    pass


class WebhookRejected(PaymentError):
    pass


@dataclass(frozen=True)
class TopUpRequest:
    """A parent's wish to add money to a pupil's lunch account."""

    intent_id: str  # ours, unique: the provider's idempotency key and our reference
    pupil_id: int
    description: str
    amount_cents: int
    currency: str
    payer_email: str
    success_url: str
    cancel_url: str

    def __post_init__(self) -> None:
        if type(self.amount_cents) is not int:
            raise TypeError("amounts are integer cents")
        if not MIN_TOPUP_CENTS <= self.amount_cents <= MAX_TOPUP_CENTS:
            raise ValueError(
                f"a top-up must be between {MIN_TOPUP_CENTS} and {MAX_TOPUP_CENTS} cents"
            )


@dataclass(frozen=True)
class Checkout:
    redirect_url: str
    provider_ref: str


@dataclass(frozen=True)
class PaymentConfirmed:
    """The provider says the money is ours. `client_id` names the payment, not the
    delivery, so a webhook delivered twice posts once in the ledger."""

    client_id: str
    intent_id: str
    provider_ref: str
    amount_cents: int
    currency: str


class PaymentProvider(Protocol):
    name: str

    def start_checkout(self, request: TopUpRequest) -> Checkout: ...

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentConfirmed | None:
        """A confirmed payment, None for an event that needs nothing of us, or
        WebhookRejected for anything forged, stale or malformed."""
        ...


def sign(secret: str, payload: bytes, timestamp: int) -> str:
    """`t=…,v1=…`: HMAC-SHA256 over `timestamp.payload`, the scheme Stripe uses too."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, payload: bytes, header: str | None, *, now: float | None = None
) -> None:
    if not header:
        raise WebhookRejected("the webhook has no signature")
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError) as exc:
        raise WebhookRejected("the webhook signature has no timestamp") from exc
    if abs((now if now is not None else time.time()) - timestamp) > WEBHOOK_TOLERANCE_S:
        raise WebhookRejected("the webhook is too old (or its clock is wrong)")
    expected = sign(secret, payload, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, fields.get("v1", "")):
        raise WebhookRejected("the webhook signature does not match")
