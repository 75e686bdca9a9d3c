"""Opening a view: the policy at open, the viewing log, then the stream or the snapshot.

Whoever authenticated the request (the portal's session and signed URL, or a camera
node's signed URL) hands over a `Grant`. Nothing is sent before the policy allows it
and the opening row of the viewing log is committed; the row is completed with the
reason the view ended: `closed` (the viewer left or the server stopped), `snapshot` (its
end is when its 'on air' light goes out, `webcam.snapshots`), or the policy's refusal
(`guardianship_ended`, `consent_missing`, `session_expired`, `signed_out`, ...).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from webcam.access import viewing_state
from webcam.errors import AccessRefused, UnknownCamera
from webcam.models import CameraView
from webcam.monitor import Check
from webcam.policy import Decision, Reason, ViewingState
from webcam.runtime import CameraRuntime
from webcam.snapshots import SNAPSHOT_VIEW

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grant:
    """Who asks to watch, as established by the caller's authentication: the user and the
    browser session that asked (the view lasts no longer than that session)."""

    user_id: int
    session_id: int
    ip: str | None = None
    user_agent: str = ""
    via: str = "portal"


@dataclass
class _Opened:
    check: Check
    view_id: int
    watching: ExitStack


async def _open(runtime: CameraRuntime, camera_id: int, grant: Grant, *,
                snapshot: bool = False) -> _Opened:
    """Check the policy and log the view. A snapshot that a still-lit earlier one of the
    viewer's covers logs nothing new (`webcam.snapshots`); its check counts that entry
    among the viewer's views, as it would any other."""
    if not runtime.serves(camera_id):
        raise UnknownCamera(f"camera {camera_id} is not served here")
    watching = ExitStack()
    watch = (grant.user_id, grant.session_id)
    watching.enter_context(runtime.monitor.watching(camera_id, watch))
    try:
        room = await runtime.monitor.room(camera_id, need=watch)
        started = runtime.clock()
        state = await asyncio.to_thread(
            _state, runtime, grant.user_id, room.school_id, room.timezone, started
        )
        check = runtime.monitor.checker(camera_id, watch, state)
        decision = await check()
        if not decision.allowed:
            raise AccessRefused(decision)
        reused = runtime.snapshots.current(grant.user_id, camera_id, started) if snapshot else None
        if reused is not None:
            view_id = reused
        else:
            view = CameraView(
                school_id=room.school_id, camera_id=camera_id, user_id=grant.user_id,
                started_at=started, ip=grant.ip, user_agent=grant.user_agent[:255],
                via=grant.via,
            )
            view_id = await asyncio.wrap_future(runtime.log.opened(view))
        if not snapshot:
            check.view_id = view_id
    except BaseException:
        watching.close()
        raise
    return _Opened(check, view_id, watching)


def _state(
    runtime: CameraRuntime, user_id: int, school_id: int, timezone: str, started: datetime
) -> ViewingState:
    with Session(runtime.engine) as session:
        return viewing_state(
            session, user_id=user_id, school_id=school_id, timezone=timezone,
            now=started, started=started, settled_only=True,
        )


async def open_stream(runtime: CameraRuntime, camera_id: int, grant: Grant) -> ViewStream:
    """Check and log now (raising `UnknownCamera` or `AccessRefused`), then give the body."""
    return ViewStream(runtime, camera_id, await _open(runtime, camera_id, grant))


class ViewStream:
    """The MJPEG body of one view: send `parts` in order; call `ended` if they run out (the
    policy ended the view). Whoever serves it must `aclose` it when done, even if it never
    started: that completes the viewing log and stops counting the viewer."""

    def __init__(self, runtime: CameraRuntime, camera_id: int, opened: _Opened) -> None:
        self._runtime = runtime
        self._camera_id = camera_id
        self._opened = opened
        self.parts: AsyncIterator[bytes] = runtime.service.stream(camera_id, opened.check)
        self._finished = False

    def ended(self) -> None:
        """The parts ran out: the policy ended the view, for the reason it gave last."""
        self._finish(self._opened.check.last.reason.value)

    async def aclose(self) -> None:
        try:
            await self.parts.aclose()  # type: ignore[attr-defined]
        finally:
            self._finish("closed")

    def _finish(self, reason: str) -> None:
        if self._finished:
            return
        self._finished = True
        self._opened.watching.close()
        self._runtime.log.closed(self._opened.view_id, self._runtime.clock(), reason)
        logger.debug("view %s of camera %s ended: %s", self._opened.view_id, self._camera_id,
                     reason)


async def take_snapshot(runtime: CameraRuntime, camera_id: int, grant: Grant) -> bytes:
    """One JPEG, as a view: refused past `PER_MINUTE` a minute (`SNAPSHOT_LIMIT`), and
    otherwise lit and counted for `SNAPSHOT_VIEW` in one entry with the viewer's other
    snapshots of the camera still lit."""
    if not runtime.serves(camera_id):
        raise UnknownCamera(f"camera {camera_id} is not served here")
    if not runtime.snapshots.admit(grant.user_id, runtime.clock()):
        raise AccessRefused(Decision.refuse(Reason.SNAPSHOT_LIMIT))
    opened = await _open(runtime, camera_id, grant, snapshot=True)
    try:
        return await runtime.service.snapshot(camera_id, opened.check)
    finally:
        opened.watching.close()
        until = runtime.clock() + SNAPSHOT_VIEW
        runtime.snapshots.lit(grant.user_id, camera_id, opened.view_id, until)
        runtime.log.closed(opened.view_id, until, "snapshot", extend=True)
