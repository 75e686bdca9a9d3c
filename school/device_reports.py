"""What devices tell the server about themselves, and how it is read back: when each was
last heard from, and what a till's reader daemon reported of its journal.

A till's daemon sends `X-Moulin-Queue` (taps journaled but not yet sent) and
`X-Moulin-Last-Sync` (when it last heard from the server, ISO 8601) with each snapshot
refresh, about every 30 seconds; a camera node writes its cameras' capture states itself
(`webcam.heartbeat`). A device not heard from for `STALE_AFTER` is shown as such.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from school.db import immediate_session
from school.models import Device, School

logger = logging.getLogger(__name__)

QUEUE_HEADER = "X-Moulin-Queue"
LAST_SYNC_HEADER = "X-Moulin-Last-Sync"
STALE_AFTER = timedelta(minutes=2)
MAX_QUEUE = 10_000_000


@dataclass(frozen=True)
class TillReport:
    queue: int
    last_sync: datetime | None


def parse_report(queue: str | None, last_sync: str | None) -> TillReport | None:
    """The report in a request's headers; None when there is none or it is garbled (a
    snapshot is not refused for that: the till needs it more than staff need the count)."""
    if queue is None:
        return None
    try:
        if not (queue.isascii() and queue.isdigit()):  # int() would take " +1_0 "
            raise ValueError(queue)
        count = int(queue)
        synced = datetime.fromisoformat(last_sync) if last_sync else None
    except ValueError:
        logger.warning("ignoring a garbled till report (queue %.20r, last sync %.40r)",
                       queue, last_sync)
        return None
    if not 0 <= count <= MAX_QUEUE or (synced is not None and synced.tzinfo is None):
        logger.warning("ignoring an impossible till report (queue %s, last sync %s)",
                       count, synced)
        return None
    return TillReport(count, synced)


def record_contact(
    engine: Engine, device_id: int, now: datetime, report: TillReport | None = None
) -> None:
    """The device was heard from now, with its report if it sent one."""
    values: dict[str, object] = {"last_seen_at": now}
    if report is not None:
        values.update(reported_queue=report.queue, reported_sync_at=report.last_sync)
    # A short write of its own, as for every device contact (see cardpay.api).
    with immediate_session(engine) as session:
        session.exec(update(Device).where(col(Device.id) == device_id).values(**values))
        session.commit()


def live_devices(session: Session, school_ids: set[int] | None = None,
                 ) -> list[tuple[Device, School]]:
    """Devices not revoked, with their school, by school then kind then name."""
    query = (select(Device, School).join(School, col(School.id) == Device.school_id)
             .where(col(Device.revoked_at).is_(None))
             .order_by(col(School.name), col(Device.kind), col(Device.name)))
    if school_ids is not None:
        query = query.where(col(Device.school_id).in_(school_ids))
    return [(device, school) for device, school in session.exec(query).all()]


def is_stale(seen_at: datetime | None, now: datetime) -> bool:
    return seen_at is None or now - seen_at > STALE_AFTER
