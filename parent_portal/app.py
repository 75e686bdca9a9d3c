"""The web application factory: settings, database, routes, CSRF and security headers,
the payment webhook endpoint, and the outbox worker that sends e-mails."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from cardpay import api as till_api
from cardpay.outbox import OutboxWorker, SmtpConfig
from cardpay.payments.registry import provider_from_settings
from cardpay.sun import Keyring
from cardpay.till import Till
from parent_portal import handlers, metrics, reset_mail, webhooks
from parent_portal.csrf import csrf_protect
from parent_portal.headers import SecurityHeaders
from parent_portal.openapi import PortalApp
from parent_portal.routes import (
    account,
    account_sessions,
    account_totp,
    admin_audit,
    admin_devices,
    admin_settings,
    admin_users,
    auth,
    camera_rules,
    camera_staff,
    cameras,
    demo,
    enrol,
    family_export,
    gdpr_register,
    health,
    leaving,
    login_totp,
    parent,
    parent_money,
    password_reset,
    payments,
    photos,
    pupil_import,
    staff,
    staff_health,
    staff_money,
    staff_offers,
    staff_reports,
    till,
    welcome,
)
from parent_portal.totp_gate import enrolment_gate
from parent_portal.warmup import build_routes
from school.clock import Clock, utcnow
from school.db import HeldConnection, make_engine
from school.logs import RequestIds
from school.settings import Settings
from webcam.runtime import CameraRuntime, SourceOpener

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
STRIPE_CHECKOUT = "https://checkout.stripe.com"
MAX_FORM_BYTES = 1024 * 1024


def smtp_config(settings: Settings) -> SmtpConfig | None:
    if not settings.smtp_host:
        return None
    return SmtpConfig(host=settings.smtp_host, port=settings.smtp_port,
                      sender=settings.smtp_from, username=settings.smtp_username,
                      password=settings.smtp_password, starttls=settings.smtp_starttls,
                      timeout_seconds=settings.smtp_timeout_seconds,
                      footer=settings.public_url)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While the server runs: capture the cameras no node owns, and send queued e-mails
    from a background thread. The first request's work is done before it (warmup)."""
    await build_routes(app)
    try:
        await anyio.to_thread.run_sync(app.state.till.warm_up)
    except SQLAlchemyError as exc:  # /healthz says so; the first taps will try again
        logger.warning("the till could not read the canteens at start-up: %s", exc)
    cameras: CameraRuntime = app.state.cameras
    cameras.start()
    config = smtp_config(app.state.settings)
    writers = {reset_mail.RESET_KIND: reset_mail.writer(app.state.settings)}
    worker = OutboxWorker(app.state.engine, config, clock=app.state.clock,
                          writers=writers) if config else None
    app.state.outbox = worker
    if worker:
        worker.start()
    try:
        yield
    finally:
        if worker:
            worker.stop()
        cameras.close()
        app.state.till.close()
        app.state.loop_reads.close()


def create_app(
    settings: Settings, engine: Engine | None = None, *, clock: Clock = utcnow,
    open_source: SourceOpener | None = None,
) -> FastAPI:
    """Build the portal. `clock` is settable so tests can move time (sessions, throttling);
    `open_source` so they can tune how cameras are read.

    The cameras no camera node owns are captured in this process, from startup (or the
    first camera request when the server runs without lifespan events)."""
    app = PortalApp(
        title="Moulin",
        # App-wide, so that every form route, present or future, checks the token.
        dependencies=[Depends(csrf_protect), Depends(enrolment_gate)],
        docs_url=None, redoc_url=None, openapi_url=None,
        # Forms are small; upload routes set their own, larger limits.
        max_body_size=MAX_FORM_BYTES,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine if engine is not None else make_engine(
        settings.effective_database_url
    )
    app.state.clock = clock
    app.state.loop_reads = HeldConnection(app.state.engine)  # cardpay.api, on SQLite
    app.state.till = Till(engine=app.state.engine,
                          keyring=Keyring(settings.effective_card_master_key(),
                                          later=settings.card_master_keys_by_version()),
                          clock=clock)
    app.state.payment_provider = provider_from_settings(settings)
    app.state.outbox = None
    app.state.smtp = smtp_config(settings)  # password-reset e-mails (parent_portal.reset_mail)
    app.state.cameras = CameraRuntime(
        engine=app.state.engine, secret_key=settings.effective_secret_key(), clock=clock,
        open_source=open_source, capture=settings.capture_cameras,
        session_idle=timedelta(minutes=settings.session_idle_minutes),
    )
    stripe = settings.effective_payment_provider == "stripe"
    app.add_middleware(SecurityHeaders, https=settings.https,
                       form_targets=(STRIPE_CHECKOUT,) if stripe else ())
    app.add_middleware(RequestIds)
    handlers.install(app)
    metrics.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Outside the CSRF dependency: webhooks authenticate by signature (see webhooks.py).
    app.mount("/payments/webhook", webhooks.webhook_app(app))
    # The till API first: each request is matched against the routers in this order, and
    # taps are most of the requests a busy server gets.
    till_api.add_tap_route(app)
    app.include_router(till_api.router)
    for module in (health, auth, login_totp, password_reset, welcome, account, account_totp,
                   account_sessions, family_export, parent, parent_money, payments, staff,
                   staff_money, staff_reports, staff_health, leaving, gdpr_register, till, enrol,
                   demo, cameras, camera_staff, camera_rules, admin_users, admin_devices,
                   admin_settings, admin_audit, staff_offers):
        app.include_router(module.router)
    for module in (photos, pupil_import):
        app.include_router(module.router)
    return app
