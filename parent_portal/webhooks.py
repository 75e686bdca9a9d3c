"""The payment providers' webhook endpoint, `POST /payments/webhook/{provider}`.

It is a small application mounted beside the portal, so the portal's CSRF check (for
browser forms) does not apply: a webhook proves itself by its signature instead, which
the provider verifies, and then by matching one of our intents (`cardpay.topups`). The
demo checkout page hands its signed webhook to `process` too, so both take one path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cardpay import topups
from cardpay.errors import CardPayError
from cardpay.payments.base import PaymentProvider, WebhookRejected
from school.clock import Clock
from school.db import immediate_session

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


def process(engine: Engine, provider: PaymentProvider, body: bytes,
            headers: Mapping[str, str], clock: Clock) -> tuple[int, dict[str, str]]:
    """The HTTP status and JSON answer for one webhook delivery."""
    try:
        paid = provider.parse_webhook(body, headers)
    except WebhookRejected as exc:
        logger.warning("rejected a %s webhook: %s", provider.name, exc)
        return 400, {"detail": "rejected"}
    if paid is None:
        return 200, {"status": "ignored"}
    with immediate_session(engine) as session:
        try:
            posted = topups.confirm(session, provider=provider.name, paid=paid, clock=clock)
        except topups.PaymentRefused as exc:
            return 400, {"detail": f"refused: {exc}"}
        except CardPayError:
            logger.exception("could not credit %s payment %s", provider.name, paid.provider_ref)
            return 500, {"detail": "not credited; retry later"}
    return 200, {"status": "duplicate" if posted.replayed else "credited"}


def webhook_app(portal: FastAPI) -> Starlette:
    """The endpoint, reading the portal's engine, provider and clock at each request."""

    async def receive(request: Request) -> JSONResponse:
        provider = cast(PaymentProvider | None, portal.state.payment_provider)
        if provider is None or provider.name != request.path_params["provider"]:
            return JSONResponse({"detail": "no such provider"}, status_code=404)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"detail": "too large"}, status_code=413)
        status, answer = await run_in_threadpool(
            process, cast(Engine, portal.state.engine), provider, body,
            dict(request.headers), cast(Clock, portal.state.clock))
        return JSONResponse(answer, status_code=status)

    routes: list[Any] = [Route("/{provider}", receive, methods=["POST"])]
    return Starlette(routes=routes)
