"""Payment providers: webhooks are believed only when signed, fresh and well formed."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs

import pytest

from cardpay.payments.base import CheckoutFailed, TopUpRequest, WebhookRejected
from cardpay.payments.demo import DemoProvider
from cardpay.payments.stripe_checkout import StripeCheckout

WHSEC = "whsec_test_secret"


def _stripe_header(payload: bytes, *, secret: str = WHSEC, at: int | None = None) -> str:
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _event(kind: str = "checkout.session.completed", **session: Any) -> bytes:
    obj = {
        "id": "cs_test_1",
        "object": "checkout.session",
        "payment_status": "paid",
        "amount_total": 2500,
        "currency": "eur",
        "metadata": {"intent_id": "in-42"},
    }
    obj.update(session)
    return json.dumps(
        {"id": "evt_1", "object": "event", "type": kind, "data": {"object": obj}}
    ).encode()


@pytest.fixture
def provider() -> StripeCheckout:
    return StripeCheckout(api_key="sk_test_x", webhook_secret=WHSEC)


def test_a_signed_paid_checkout_is_a_confirmed_payment(provider: StripeCheckout) -> None:
    body = _event()
    paid = provider.parse_webhook(body, {"Stripe-Signature": _stripe_header(body)})
    assert paid is not None
    assert (paid.client_id, paid.intent_id, paid.amount_cents, paid.currency) == (
        "stripe:cs_test_1",
        "in-42",
        2500,
        "EUR",
    )


def test_the_same_payment_delivered_twice_has_one_client_id(provider: StripeCheckout) -> None:
    first = _event()
    again = _event("checkout.session.async_payment_succeeded")
    a = provider.parse_webhook(first, {"stripe-signature": _stripe_header(first)})
    b = provider.parse_webhook(again, {"stripe-signature": _stripe_header(again)})
    assert a is not None
    assert b is not None
    assert a.client_id == b.client_id


@pytest.mark.parametrize(
    "header",
    [
        None,
        "t=1,v1=00",
        _stripe_header(_event(), secret="whsec_someone_else"),
        _stripe_header(_event(), at=int(time.time()) - 3600),
    ],
    ids=["unsigned", "garbage", "wrong-secret", "stale"],
)
def test_forged_or_stale_webhooks_are_rejected(
    provider: StripeCheckout, header: str | None
) -> None:
    headers = {} if header is None else {"Stripe-Signature": header}
    with pytest.raises(WebhookRejected):
        provider.parse_webhook(_event(), headers)


def test_a_body_changed_after_signing_is_rejected(provider: StripeCheckout) -> None:
    header = _stripe_header(_event())
    with pytest.raises(WebhookRejected):
        provider.parse_webhook(_event(amount_total=250000), {"Stripe-Signature": header})


def test_unpaid_and_unrelated_events_need_nothing(provider: StripeCheckout) -> None:
    for body in (_event(payment_status="unpaid"), _event("customer.created")):
        assert provider.parse_webhook(body, {"Stripe-Signature": _stripe_header(body)}) is None


@pytest.mark.parametrize("change", [{"metadata": {}}, {"amount_total": 12.5}, {"amount_total": -1}])
def test_a_signed_but_malformed_session_is_rejected(
    provider: StripeCheckout, change: dict[str, Any]
) -> None:
    body = _event(**change)
    with pytest.raises(WebhookRejected):
        provider.parse_webhook(body, {"Stripe-Signature": _stripe_header(body)})


class _FakeStripeApi(BaseHTTPRequestHandler):
    """Stripe's API as seen on the wire: a form-encoded POST answered with JSON."""

    requests: ClassVar[list[tuple[str, dict[str, list[str]], str | None]]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.requests.append((self.path, parse_qs(body), self.headers.get("Idempotency-Key")))
        if self.status != 200:
            answer: dict[str, Any] = {"error": {"type": "api_error", "message": "down"}}
        else:
            answer = {
                "id": "cs_test_9",
                "object": "checkout.session",
                "url": "https://checkout.stripe.test/c/pay/cs_test_9",
            }
        data = json.dumps(answer).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stripe_api() -> Iterator[str]:
    _FakeStripeApi.requests = []
    _FakeStripeApi.status = 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeStripeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def _request(amount: int = 1500) -> TopUpRequest:
    return TopUpRequest(
        intent_id="in-7",
        pupil_id=3,
        description="Cantine — Léa Martin",
        amount_cents=amount,
        currency="EUR",
        payer_email="a@example.org",
        success_url="https://s/ok",
        cancel_url="https://s/no",
    )


def test_start_checkout_sends_amount_and_idempotency_key(stripe_api: str) -> None:
    provider = StripeCheckout(api_key="sk_test_x", webhook_secret=WHSEC, api_base=stripe_api)
    checkout = provider.start_checkout(_request())
    assert checkout.redirect_url == "https://checkout.stripe.test/c/pay/cs_test_9"
    path, form, key = _FakeStripeApi.requests[0]
    assert path == "/v1/checkout/sessions"
    assert key == "in-7"
    assert form["line_items[0][price_data][unit_amount]"] == ["1500"]
    assert form["line_items[0][price_data][currency]"] == ["eur"]
    assert form["metadata[intent_id]"] == ["in-7"]


def test_a_provider_outage_is_a_clear_error(stripe_api: str) -> None:
    _FakeStripeApi.status = 500
    provider = StripeCheckout(api_key="sk_test_x", webhook_secret=WHSEC, api_base=stripe_api)
    with pytest.raises(CheckoutFailed, match="unavailable"):
        provider.start_checkout(_request())


@pytest.mark.parametrize("amount", [0, 99, 50_001])
def test_amounts_outside_the_limits_are_refused(amount: int) -> None:
    with pytest.raises(ValueError, match="between"):
        _request(amount)


def test_float_amounts_are_refused() -> None:
    with pytest.raises(TypeError, match="integer cents"):
        _request(15.0)  # type: ignore[arg-type]


def test_demo_provider_round_trip_and_forgery() -> None:
    demo = DemoProvider(secret="s" * 32)
    checkout = demo.start_checkout(_request())
    assert checkout.redirect_url.startswith("/payments/demo/in-7?amount=1500")
    body, signature = demo.webhook_for("in-7", 1500, "EUR")
    paid = demo.parse_webhook(body, {"Moulin-Demo-Signature": signature})
    assert paid is not None
    assert (paid.client_id, paid.amount_cents) == ("demo:in-7", 1500)
    forged = body.replace(b"1500", b"9500")
    with pytest.raises(WebhookRejected):
        demo.parse_webhook(forged, {"Moulin-Demo-Signature": signature})
    other = DemoProvider(secret="o" * 32)
    with pytest.raises(WebhookRejected):
        other.parse_webhook(body, {"Moulin-Demo-Signature": signature})
