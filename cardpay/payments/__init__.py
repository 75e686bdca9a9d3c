"""Online top-ups through a payment provider: Stripe Checkout, or a demo provider."""
