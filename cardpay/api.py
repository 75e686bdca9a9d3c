"""The till API for reader daemons, authenticated by each device's own bearer token.

    POST /api/till/taps       a tap → its verdict (idempotent on the tap id)
    GET  /api/till/snapshot   what the till needs to decide alone while offline

A refused tap is a verdict (200, `accepted: false`), not an HTTP error: the till shows it.
A missing, unknown or revoked token gets 401; an address that keeps sending them gets 429
for a while (school.device_throttle), without any cost to valid tokens.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Any, cast
from uuid import UUID

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from starlette.responses import Response

from cardpay import metrics
from cardpay.snapshot import snapshot
from cardpay.till import TapRequest, Till
from school import device_reports, device_throttle
from school.clock import Clock, utc_from_db
from school.db import DriverStatement, HeldConnection, immediate_session
from school.logs import bind
from school.models import Device, DeviceKind, School
from school.security import token_digest
from school.settings import Settings

LAST_SEEN_EVERY = timedelta(minutes=1)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/till", tags=["till"], route_class=metrics.TimedRoute)


# Strict: a device's body is JSON as the till API describes it, or a 422. Nothing is
# coerced ("yes" or 1 is no boolean, "12" no integer): a loosely typed field once made a
# tap count as a meal served offline, which skips one-meal-a-day and the floor.
_STRICT = ConfigDict(extra="forbid", strict=True)


class CardIn(BaseModel):
    model_config = _STRICT

    uid: str = Field(pattern=r"^[0-9A-Fa-f: ]{8,40}$", description="UID as hex")
    sun_url: str | None = Field(
        default=None, max_length=1000, description="the NDEF URL an NTAG 424 DNA card mirrored"
    )


class TapIn(BaseModel):
    model_config = _STRICT

    tap_id: UUID
    read_at: AwareDatetime
    card: CardIn
    offline_accepted: bool | None = Field(
        default=None, description="the till's own verdict, for a tap it decided offline"
    )


@dataclass(frozen=True)
class CallingTill:
    """The till a request comes from, as read for this request."""

    id: int
    school_id: int
    name: str
    last_seen_at: datetime | None


# Core, not the ORM: this runs on every tap, and loading a `Device` costs more than the SQL.
_DEVICE = Device.__table__  # type: ignore[attr-defined]
_LIVE_TILL = DriverStatement(select(
    _DEVICE.c.id, _DEVICE.c.school_id, _DEVICE.c.name, _DEVICE.c.last_seen_at
).where(
    _DEVICE.c.token_sha256 == bindparam("digest"),
    _DEVICE.c.revoked_at.is_(None),
    _DEVICE.c.kind == DeviceKind.TILL,
))


def _engine(request: Request) -> Engine:
    return cast(Engine, request.app.state.engine)


def refuse_token(request: Request, reason: str) -> HTTPException:
    """The 401 for a bad token, counted against the caller's address; a 429 once that
    address has failed too often (school.device_throttle)."""
    settings = cast(Settings, request.app.state.settings)
    now = cast(Clock, request.app.state.clock)()
    ip = request.client.host if request.client else ""
    window = timedelta(minutes=settings.device_failure_window_minutes)
    # A plain read first: once an address is locked out, its requests write nothing, so a
    # flood of them never takes SQLite's write lock away from the tills.
    with Session(_engine(request)) as read:
        retry_at = device_throttle.locked_until(
            session=read, ip=ip, now=now, limit=settings.device_max_failures_per_ip,
            window=window)
    if retry_at is not None:
        seconds = max(1, math.ceil((retry_at - now).total_seconds()))
        return HTTPException(429, "too many requests with a bad device token",
                             headers={"Retry-After": str(seconds)})
    with immediate_session(_engine(request)) as session:
        device_throttle.record_failure(session=session, ip=ip, now=now, window=window)
        session.commit()
    logger.info("device API: %s from %s", reason, ip)
    return HTTPException(401, reason, headers={"WWW-Authenticate": "Bearer"})


def _live_till(engine: Engine, digest: str) -> CallingTill | None:
    with engine.connect() as conn:
        return _calling_till(_LIVE_TILL.first(conn, {"digest": digest}))


def _calling_till(row: tuple[Any, ...] | None) -> CallingTill | None:
    if row is None:
        return None
    device_id, school_id, name, last_seen_at = row
    return CallingTill(device_id, school_id, name, utc_from_db(last_seen_at))


def _seen(engine: Engine, device_id: int, now: datetime) -> None:
    # A write of its own: the read above must not be upgraded under a busy till.
    with immediate_session(engine) as session:
        session.exec(update(Device).where(col(Device.id) == device_id).values(last_seen_at=now))
        session.commit()


def _mark_seen(conn: Connection, *, device_id: int, now: datetime) -> None:
    conn.execute(update(_DEVICE).where(_DEVICE.c.id == device_id).values(last_seen_at=now))


def _log_failure(done: Future[None]) -> None:
    if done.exception() is not None:
        logger.warning("a till's last-seen time was not recorded: %s", done.exception())


async def current_till(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> CallingTill:
    """The till whose token this is; 401 for a missing, unknown or revoked token (429 for
    an address that keeps sending them; counted in a worker thread, off the event loop)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise await anyio.to_thread.run_sync(refuse_token, request, "a device token is required")
    engine, digest = _engine(request), token_digest(token.strip())
    if engine.dialect.name == "sqlite":
        # One indexed row from a local file, which WAL readers get without waiting for
        # writers: cheaper on the event loop than a round trip to a worker thread.
        device = _calling_till(cast(HeldConnection, request.app.state.loop_reads).first(
            _LIVE_TILL, {"digest": digest}))
    else:
        device = await anyio.to_thread.run_sync(_live_till, engine, digest)
    if device is None:
        raise await anyio.to_thread.run_sync(refuse_token, request,
                                             "unknown or revoked device token")
    now = cast(Clock, request.app.state.clock)()
    if device.last_seen_at is None or now - device.last_seen_at > LAST_SEEN_EVERY:
        writer = cast(Till, request.app.state.till).writer
        if writer is not None:
            # Rides along with the tap's own commit instead of paying for a commit first.
            writer.enqueue(partial(_mark_seen, device_id=device.id, now=now)).add_done_callback(
                _log_failure
            )
        else:
            await anyio.to_thread.run_sync(_seen, engine, device.id, now)
    return device


TillDevice = Annotated[CallingTill, Depends(current_till)]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class TapRoute(metrics.TimedRoute):
    """The tap endpoint's route, answered without FastAPI's work for each request.

    Taps are nearly every request a server gets at lunch, and solving the endpoint's
    parameters (the app's dependencies, the device's token, the body) cost FastAPI more
    than deciding the tap. This handler takes the same steps in the same order: each
    dependency the app gives all its routes (each must take the request alone, or the
    route refuses to be built), the token (`current_till`: 401, 429), the body against
    `TapIn` (a 422 in FastAPI's shape for a malformed one; the body is read as JSON
    whatever type it declares); then it calls the endpoint. The endpoint's signature
    still describes the route in OpenAPI."""

    def untimed_handler(self) -> Handler:
        guards = [_request_only(d) for d in self.dependant.dependencies
                  if d.call is not current_till]
        endpoint = cast(Callable[..., Coroutine[Any, Any, Response]], self.endpoint)

        async def handle(request: Request) -> Response:
            for guard in guards:
                await guard(request)
            device = await current_till(request, request.headers.get("authorization"))
            body = await request.body()
            try:
                tap = TapIn.model_validate_json(body)
            except ValidationError as exc:
                raise RequestValidationError(
                    [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)],
                    body=body) from None
            return await endpoint(tap=tap, device=device, request=request)

        return handle


def _request_only(dependency: Dependant) -> Callable[[Request], Coroutine[Any, Any, Any]]:
    takes_more = (dependency.path_params, dependency.query_params, dependency.header_params,
                  dependency.cookie_params, dependency.body_params, dependency.dependencies)
    call = dependency.call
    if any(takes_more) or not dependency.request_param_name or \
            not inspect.iscoroutinefunction(call):
        raise TypeError(f"the tap route cannot run the dependency {call!r}: "
                        "give it the request alone, as an async function")
    name = dependency.request_param_name
    return lambda request: call(**{name: request})


async def post_tap(tap: TapIn, device: TillDevice, request: Request) -> JSONResponse:
    # Async: on SQLite the tap waits for the group commit without holding a worker thread.
    # A response made here: FastAPI would otherwise validate and re-encode the verdict's
    # dict, field by field, on every tap.
    till = cast(Till, request.app.state.till)
    bind(device=f"till:{device.id}")  # this request's own log context
    verdict = await till.tap_async(
        device,
        TapRequest(
            tap_id=str(tap.tap_id),
            read_at=tap.read_at,
            uid=tap.card.uid,
            sun_url=tap.card.sun_url,
            offline_accepted=tap.offline_accepted,
        ),
    )
    metrics.tap_answered(verdict)
    return JSONResponse(verdict.as_json())


def add_tap_route(app: FastAPI) -> None:
    """Add `POST /api/till/taps` to the app itself, ahead of its other routes: a route of
    an included router is reached through several more layers of FastAPI's routing on
    every request (a twentieth of the event loop's time under unthrottled taps)."""
    app.router.add_api_route(
        f"{router.prefix}/taps", post_tap, methods=["POST"], response_model=None,
        route_class_override=TapRoute, tags=["till"],
        responses={200: {"description": "the verdict, accepted or refused"}})


@router.get("/snapshot")
def get_snapshot(device: TillDevice, request: Request) -> dict[str, Any]:
    clock = cast(Clock, request.app.state.clock)
    # The daemon reports its journal's queue with each refresh (school.device_reports).
    report = device_reports.parse_report(request.headers.get(device_reports.QUEUE_HEADER),
                                         request.headers.get(device_reports.LAST_SYNC_HEADER))
    device_reports.record_contact(_engine(request), device.id, clock(), report)
    with Session(_engine(request)) as session:
        school = session.get(School, device.school_id)
        assert school is not None
        return snapshot(session, school, clock())
