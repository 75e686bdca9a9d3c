"""Snapshots are views: each lights the room's 'on air' sign and counts against the daily
quota for `SNAPSHOT_VIEW` after it, a viewer's snapshots of one camera within that time
share one viewing-log entry, and a viewer may take `PER_MINUTE` a minute.

Kept in memory by the process that serves the camera (a node's count reaches the
portal's 'on air' page with its live viewers). Times come from the injected clock.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

SNAPSHOT_VIEW = timedelta(seconds=30)
PER_MINUTE = 5


@dataclass(frozen=True)
class Lease:
    view_id: int
    until: datetime  # the entry's end: lit and counted until then


class Snapshots:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken: dict[int, deque[datetime]] = {}  # by user: when, within the minute
        self._leases: dict[tuple[int, int], Lease] = {}  # by (user, camera)

    def admit(self, user_id: int, now: datetime) -> bool:
        """Count a snapshot for `user_id` now, unless they have had `PER_MINUTE` already."""
        with self._lock:
            taken = self._taken.setdefault(user_id, deque())
            while taken and now - taken[0] >= timedelta(minutes=1):
                taken.popleft()
            if len(taken) >= PER_MINUTE:
                return False
            taken.append(now)
            return True

    def current(self, user_id: int, camera_id: int, now: datetime) -> int | None:
        """The viewing-log entry a snapshot now extends, if the last one is still lit."""
        with self._lock:
            lease = self._leases.get((user_id, camera_id))
            return lease.view_id if lease is not None and now < lease.until else None

    def lit(self, user_id: int, camera_id: int, view_id: int, until: datetime) -> None:
        with self._lock:
            self._leases[(user_id, camera_id)] = Lease(view_id, until)

    def viewers(self, camera_id: int, now: datetime) -> int:
        """Viewers of `camera_id` whose last snapshot is still lit."""
        with self._lock:
            for key in [k for k, lease in self._leases.items() if lease.until <= now]:
                del self._leases[key]
            return sum(1 for _, camera in self._leases if camera == camera_id)
