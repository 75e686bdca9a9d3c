"""The payment provider a deployment uses, chosen by `MOULIN_PAYMENT_PROVIDER`."""

from __future__ import annotations

import hashlib
import hmac

from cardpay.payments.base import PaymentProvider
from cardpay.payments.demo import DemoProvider
from school.settings import Settings

DEMO_CHECKOUT_PATH = "/payments/demo"


def demo_secret(settings: Settings) -> str:
    """The demo webhooks' signing key, derived from the deployment's secret key."""
    key = settings.effective_secret_key().encode()
    return hmac.new(key, b"moulin demo payments", hashlib.sha256).hexdigest()


def provider_from_settings(settings: Settings) -> PaymentProvider | None:
    """The configured provider, or None when online top-ups are turned off."""
    name = settings.effective_payment_provider
    if name == "demo":
        return DemoProvider(secret=demo_secret(settings), checkout_path=DEMO_CHECKOUT_PATH)
    if name == "stripe":
        from cardpay.payments.stripe_checkout import StripeCheckout

        return StripeCheckout(api_key=settings.stripe_api_key,
                              webhook_secret=settings.stripe_webhook_secret,
                              api_base=settings.stripe_api_base or None)
    return None
