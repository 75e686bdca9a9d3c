"""What one viewer receives: an MJPEG body (`mjpeg_stream`) or a single JPEG (`snapshot`).

Framework-light on purpose: a web route wraps `mjpeg_stream` in its streaming response
with `MEDIA_TYPE`. The policy callback is asked when the stream opens and again at least every
`recheck` seconds (and before any live frame once that time has passed, however slowly
the viewer reads); a refusal that a card explains (paused, outside broadcast hours, a
closed day) swaps the video for that card, any other ends the stream with the 'stream
ended' card. Each yielded chunk is a part already built by the pipeline: no copy per viewer.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from types import MappingProxyType

from school.clock import Clock, utcnow
from webcam.errors import AccessRefused
from webcam.hub import Channel
from webcam.pipeline import BOUNDARY, FrameKind, Pipeline
from webcam.policy import ALLOWED, Decision, Reason

logger = logging.getLogger(__name__)

MEDIA_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
CLOSING = f"--{BOUNDARY}--\r\n".encode()
RECHECK_SECONDS = 0.5

PolicyCheck = Callable[[], Decision | Awaitable[Decision]]

CARD_FOR_REASON = MappingProxyType(
    {
        Reason.PAUSED: FrameKind.PAUSED,
        Reason.OUTSIDE_HOURS: FrameKind.OUTSIDE_HOURS,
        Reason.CLOSED_DAY: FrameKind.OUTSIDE_HOURS,
    }
)


async def ask(check: PolicyCheck) -> Decision:
    answer = check()
    if inspect.isawaitable(answer):
        return await answer
    return answer


async def mjpeg_stream(
    *,
    channel: Channel,
    pipeline: Pipeline,
    check: PolicyCheck,
    clock: Clock = utcnow,
    recheck: float = RECHECK_SECONDS,
) -> AsyncIterator[bytes]:
    """The multipart body for one viewer, counted as a viewer of `channel` while it runs."""
    loop = asyncio.get_running_loop()
    with channel.viewer():
        last = 0
        next_check = loop.time()
        decision = ALLOWED  # replaced by the first check, made before anything is sent
        while True:
            if loop.time() >= next_check:
                decision = await ask(check)
                # On a grid shared by every viewer, so that a camera whose frames stop
                # wakes its viewers for their checks together (see `webcam.hub`).
                next_check = (math.floor(loop.time() / recheck) + 1) * recheck
            if not decision.allowed:
                card = CARD_FOR_REASON.get(decision.reason)
                if card is None:
                    logger.info("stream on %s ended: %s", channel.name, decision.reason.value)
                    yield pipeline.card(FrameKind.ENDED, clock()).part
                    yield CLOSING
                    return
                yield pipeline.card(card, clock()).part
                last = 0  # frames missed under a card were not dropped: count from the next
                await asyncio.sleep(max(0.0, next_check - loop.time()))
                continue
            got = await channel.next(last, next_check - loop.time(), loop=loop)
            if got is not None:
                channel.dropped += got.sequence - last - 1 if last else 0
                last = got.sequence
                yield got.frame.part


async def snapshot(
    *,
    channel: Channel,
    pipeline: Pipeline,
    check: PolicyCheck,
    clock: Clock = utcnow,
    wait: float = 2.0,
) -> bytes:
    """One JPEG: the newest frame, the card the policy calls for, or 'camera offline'.

    Raises `AccessRefused` when the policy refuses for a reason no card stands in for.
    """
    decision = await ask(check)
    if not decision.allowed:
        card = CARD_FOR_REASON.get(decision.reason)
        if card is None:
            raise AccessRefused(decision)
        return pipeline.card(card, clock()).jpeg
    got = await channel.next(0, timeout=wait)
    if got is None:
        return pipeline.card(FrameKind.OFFLINE, clock()).jpeg
    return got.frame.jpeg
