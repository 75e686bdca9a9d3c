"""The verdicts of one till as server-sent events, for the cashier's screen.

Every server process reads the same Tap table, so the feed polls it for rows newer than
the last one sent (a few times a second, one indexed query) instead of relying on an
in-process bus that a second worker would never hear. Each event's id is the tap's row
id, so a browser that reconnects (EventSource sends Last-Event-ID) misses nothing.

A screen reads today's taps only (from midnight where the school is): a cashier needs the
queue in front of them, not the till's history of names, allergies and balances.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

import anyio
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from cardpay.models import Tap
from cardpay.verdicts import verdict_of

POLL_SECONDS = 0.25
KEEP_ALIVE_SECONDS = 15.0
# A stream ends after this and the browser reconnects at once, so a server shutting
# down never waits long for open screens.
STREAM_SECONDS = 300.0
BATCH = 50
FROM_NOW = -1  # `after` meaning: only taps newer than the stream's start


def _last_id(engine: Engine, device_id: int) -> int:
    with Session(engine) as session:
        return last_tap_id(session, device_id)


def last_tap_id(session: Session, device_id: int) -> int:
    found = session.exec(select(func.max(Tap.id)).where(Tap.device_id == device_id)).one()
    return int(found or 0)


def event_of(session: Session, tap: Tap) -> dict[str, Any]:
    """What the screen shows of a tap: its verdict, never the card's full UID."""
    uid = tap.card_uid
    return {
        **verdict_of(session, tap).as_json(),
        "id": tap.id,
        "card": {"uid_end": uid[-4:] if uid else "", "secure": tap.sun_verified},
    }


def day_start(school_timezone: str, now: datetime) -> datetime:
    """Midnight of `now`'s day where the school is, in UTC."""
    zone = ZoneInfo(school_timezone)
    local = now.astimezone(zone)
    return datetime.combine(local.date(), dt_time(0), tzinfo=zone).astimezone(UTC)


def new_events(engine: Engine, device_id: int, after: int,
               since: datetime) -> list[dict[str, Any]]:
    """Taps of the till after row `after` that reached the server from `since` on."""
    with Session(engine) as session:
        taps = session.exec(
            select(Tap)
            .where(Tap.device_id == device_id, col(Tap.id) > after,
                   col(Tap.received_at) >= since)
            .order_by(col(Tap.id))
            .limit(BATCH)
        ).all()
        return [event_of(session, tap) for tap in taps]


def sse(event: dict[str, Any]) -> str:
    return f"id: {event['id']}\nevent: verdict\ndata: {json.dumps(event)}\n\n"


async def stream(
    engine: Engine,
    device_id: int,
    after: int,
    *,
    since: datetime,
    poll: float = POLL_SECONDS,
    lifetime: float = STREAM_SECONDS,
) -> AsyncIterator[str]:
    """The event stream of taps from `since` (today's midnight, see `day_start`) on;
    Starlette cancels it when the browser goes away."""
    yield "retry: 1000\n\n"
    if after == FROM_NOW:
        after = await anyio.to_thread.run_sync(_last_id, engine, device_id)
    started = last_sent = time.monotonic()
    while time.monotonic() - started < lifetime:
        events = await anyio.to_thread.run_sync(new_events, engine, device_id, after,
                                                 since)
        for event in events:
            after = int(event["id"])
            yield sse(event)
            last_sent = time.monotonic()
        if time.monotonic() - last_sent > KEEP_ALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        await anyio.sleep(poll)
