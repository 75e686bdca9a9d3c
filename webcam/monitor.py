"""The access checks of running streams, kept cheap: one database read per camera, not per viewer.

Every stream asks its policy question at least once a second (`webcam.stream`). Asking the
database each time would cost a thousand reads a second for a thousand viewers, so the
monitor keeps, per camera, the room's rules and the policy records of the users watching
it, read together (a fixed handful of queries) at most every `max_age` seconds while
anyone watches, in a worker thread: their roles and children, the browser sessions that
opened their views (revoked? expired? the account still active?) and their views of the
day that are still open or just ended (the daily quota counts all of a viewer's streams
together, live, wherever they run). Each check is then `decide_view` over that snapshot.
A change made in this process (a pause, a consent) invalidates the snapshot at once;
a change made elsewhere (another server process, the office ending a guardianship, an
import) is seen within `max_age` plus the stream's re-check interval: under a second.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from school.clock import Clock, utcnow
from school.models import School
from webcam.access import ViewSpan, day_start, recent_views, rules_for, sign_ins, viewers_for
from webcam.models import Camera
from webcam.policy import (
    CameraRules,
    Decision,
    Reason,
    SignIn,
    Viewer,
    ViewingState,
    decide_view,
)

logger = logging.getLogger(__name__)

MAX_AGE = 0.3  # seconds a room snapshot is trusted
SESSION_IDLE = timedelta(minutes=120)  # `Settings.session_idle_minutes`'s default

Watch = tuple[int, int]  # (user id, id of the browser session that opened the view)


@dataclass(frozen=True)
class Room:
    """What the policy needs about one camera and its current watchers, read at once."""

    camera_id: int
    school_id: int
    timezone: str
    rules: CameraRules
    viewers: Mapping[int, Viewer] = field(default_factory=dict)
    sign_ins: Mapping[int, SignIn | None] = field(default_factory=dict)  # by session id
    views: Mapping[int, tuple[ViewSpan, ...]] = field(default_factory=dict)  # by user id
    loaded_at: float = -math.inf  # time.monotonic()
    generation: int = 0  # the monitor's generation when the read began

    def viewer(self, user_id: int) -> Viewer:
        return self.viewers.get(user_id) or Viewer(user_id=user_id)

    def holds(self, watch: Watch) -> bool:
        return watch[0] in self.viewers and watch[1] in self.sign_ins


def _gone(camera_id: int, watches: list[Watch]) -> Room:
    """A camera deleted, or its school: nobody may watch it."""
    rules = CameraRules(camera_id=camera_id, classroom_id=-1, enabled=False)
    viewers = {u: Viewer(user_id=u) for u, _ in watches}
    signed: dict[int, SignIn | None] = {s: None for _, s in watches}
    return Room(camera_id, -1, "UTC", rules, viewers, signed, loaded_at=time.monotonic())


class AccessMonitor:
    def __init__(self, engine: Engine, *, clock: Clock = utcnow, max_age: float = MAX_AGE,
                 session_idle: timedelta = SESSION_IDLE):
        self._engine = engine
        self.clock = clock
        self.max_age = max_age
        self.session_idle = session_idle
        self._lock = threading.Lock()
        self._rooms: dict[int, Room] = {}
        self._watching: dict[int, Counter[Watch]] = {}
        self._inflight: dict[int, Future[Room]] = {}
        self._generation = 0  # bumped by `invalidate`: older reads are stale however young
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="access")
        self.reads = 0  # room snapshots read from the database, for tests and benchmarks

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    @contextmanager
    def watching(self, camera_id: int, watch: Watch) -> Iterator[None]:
        """Count `watch` (a user and their browser session) among the camera's watchers
        while the block runs, so that snapshots read their records."""
        with self._lock:
            self._watching.setdefault(camera_id, Counter())[watch] += 1
        try:
            yield
        finally:
            with self._lock:
                watchers = self._watching[camera_id]
                watchers[watch] -= 1
                if watchers[watch] <= 0:
                    del watchers[watch]
                if not watchers:
                    del self._watching[camera_id]
                    self._rooms.pop(camera_id, None)

    def invalidate(self, camera_id: int | None = None) -> None:
        """Forget snapshots (one camera's, or all) so the next check reads afresh."""
        with self._lock:
            self._generation += 1
            if camera_id is None:
                self._rooms.clear()
            else:
                self._rooms.pop(camera_id, None)

    async def room(self, camera_id: int, *, need: Watch | None = None) -> Room:
        """A snapshot no older than `max_age` (an older one while another read is under
        way), holding `need`'s records when asked."""
        while True:
            with self._lock:
                room = self._rooms.get(camera_id)
                fresh = room is not None and time.monotonic() - room.loaded_at <= self.max_age
                has_user = room is not None and (need is None or room.holds(need))
                if room is not None and has_user and (fresh or camera_id in self._inflight):
                    return room
                future = self._inflight.get(camera_id)
                if future is None:
                    future = self._pool.submit(self._read, camera_id)
                    self._inflight[camera_id] = future
            room = await asyncio.wrap_future(future)
            with self._lock:
                registered = need in self._watching.get(camera_id, ())
                current = room.generation == self._generation
            # A read that began before an invalidation, or before `need` arrived,
            # is not good enough: read again.
            if current and (need is None or room.holds(need) or not registered):
                return room

    def _read(self, camera_id: int) -> Room:
        try:
            with self._lock:
                watches = list(self._watching.get(camera_id, ()))
                generation = self._generation
            room = replace(self._load(camera_id, watches), generation=generation)
            with self._lock:
                if camera_id in self._watching and generation == self._generation:
                    self._rooms[camera_id] = room
            return room
        finally:
            with self._lock:
                self._inflight.pop(camera_id, None)

    def _load(self, camera_id: int, watches: list[Watch]) -> Room:
        now = self.clock()
        users = sorted({user for user, _ in watches})
        with Session(self._engine) as session:
            camera = session.get(Camera, camera_id)
            school = session.get(School, camera.school_id) if camera is not None else None
            if camera is None or school is None or school.id is None:
                return _gone(camera_id, watches)
            rules = rules_for(session, camera, school, now)
            if not camera.enabled:
                rules = CameraRules(camera_id=camera_id, classroom_id=camera.classroom_id,
                                    enabled=False)
            viewers = viewers_for(
                session, users, school_id=school.id, classroom_id=camera.classroom_id
            )
            signed = sign_ins(session, [s for _, s in watches], idle=self.session_idle)
            views = recent_views(session, users, school_id=school.id, now=now)
        self.reads += 1
        return Room(camera_id, school.id, school.timezone, rules, viewers, signed, views,
                    time.monotonic())

    def checker(self, camera_id: int, watch: Watch, state: ViewingState) -> Check:
        return Check(self, camera_id, watch, state)


class Check:
    """One view's policy callback, the one place every kind of stream asks 'may this
    viewer still watch?'; remembers its last answer (the viewing log's reason).

    It also keeps the viewer's other views it has seen open (here or in another process)
    so that the daily quota counts them all, live: three parallel streams use it up three
    times as fast as one."""

    def __init__(self, monitor: AccessMonitor, camera_id: int, watch: Watch,
                 state: ViewingState) -> None:
        self._monitor = monitor
        self.camera_id = camera_id
        self.user_id, self.session_id = watch
        self.state = state
        self.view_id: int | None = None  # this view's own row, once logged
        self.last = Decision.refuse(Reason.NOT_GUARDIAN)
        self._others: dict[int, ViewSpan] = {}

    async def __call__(self) -> Decision:
        room = await self._monitor.room(self.camera_id, need=(self.user_id, self.session_id))
        now = self._monitor.clock()
        self.last = decide_view(room.sign_ins.get(self.session_id), room.viewer(self.user_id),
                                room.rules, now, self._live_state(room, now))
        return self.last

    def _live_state(self, room: Room, now: datetime) -> ViewingState:
        if self.state.daily_quota is None:
            return self.state
        for span in room.views.get(self.user_id, ()):
            if span.view_id != self.view_id and span.view_id not in self.state.counted_views:
                self._others[span.view_id] = span
        midnight = day_start(room.timezone, now)
        others = sum((span.watched(midnight, now) for span in self._others.values()),
                     timedelta(0))
        return replace(self.state, watched_earlier_today=self.state.watched_earlier_today + others)
