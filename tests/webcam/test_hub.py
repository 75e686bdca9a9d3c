"""The hub: newest frame wins, stalled viewers skip, publishing never waits, viewers counted."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from webcam.hub import TICK, Channel, Hub
from webcam.pipeline import EncodedFrame, FrameKind

AT = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


def frame(n: int) -> EncodedFrame:
    return EncodedFrame(FrameKind.LIVE, b"head" + str(n).encode() + b"\r\n", 4, AT)


def test_a_viewer_that_falls_behind_gets_only_the_newest() -> None:
    channel = Channel()
    for n in range(100):
        channel.publish(frame(n))

    async def late_viewer() -> bytes:
        got = await channel.next(0, timeout=1)
        assert got is not None
        assert got.sequence == 100
        return got.frame.jpeg

    assert asyncio.run(late_viewer()) == b"99"


def test_a_viewer_one_frame_behind_gets_the_frame_it_missed_then_the_newest() -> None:
    channel = Channel()
    for n in range(1, 4):
        channel.publish(frame(n))

    async def viewer() -> list[bytes]:
        got: list[bytes] = []
        after = 1
        while (published := await channel.next(after, timeout=0)) is not None:
            got.append(published.frame.jpeg)
            after = published.sequence
        return got

    assert asyncio.run(viewer()) == [b"2", b"3"]


def test_no_live_frame_is_given_once_a_card_has_come() -> None:
    channel = Channel()
    channel.publish(frame(1))
    channel.publish(frame(2))
    channel.publish(EncodedFrame(FrameKind.PAUSED, b"head" + b"card\r\n", 4, AT))

    async def viewer() -> bytes:
        got = await channel.next(1, timeout=0)
        assert got is not None
        return got.frame.jpeg

    assert asyncio.run(viewer()) == b"card"


def test_next_waits_for_a_newer_frame_or_times_out() -> None:
    channel = Channel()
    channel.publish(frame(1))

    async def scenario() -> None:
        assert await channel.next(1, timeout=0.05) is None
        waiting = asyncio.create_task(channel.next(1, timeout=5))
        await asyncio.sleep(0.05)
        threading.Thread(target=channel.publish, args=(frame(2),)).start()
        got = await waiting
        assert got is not None
        assert got.frame.jpeg == b"2"

    asyncio.run(scenario())


def test_many_waiting_viewers_are_woken_by_one_publish() -> None:
    channel = Channel()

    async def scenario() -> None:
        viewers = [asyncio.create_task(channel.next(0, timeout=5)) for _ in range(50)]
        await asyncio.sleep(0.05)
        channel.publish(frame(1))
        results = await asyncio.gather(*viewers)
        assert {r.sequence for r in results if r} == {1}
        assert len(channel._wakes) == 0  # nothing is left behind per viewer

    asyncio.run(scenario())


def test_a_viewer_leaving_does_not_disturb_the_others_waiting() -> None:
    channel = Channel()

    async def scenario() -> None:
        viewers = [asyncio.create_task(channel.next(0, timeout=5)) for _ in range(10)]
        await asyncio.sleep(0.05)
        viewers[3].cancel()  # asyncio cancels the future it waits on: the shared one
        await asyncio.sleep(0.05)
        assert not any(v.done() for i, v in enumerate(viewers) if i != 3)
        channel.publish(frame(1))
        results = await asyncio.gather(*viewers, return_exceptions=True)
        assert isinstance(results[3], asyncio.CancelledError)
        assert [r.sequence for i, r in enumerate(results) if i != 3] == [1] * 9

    asyncio.run(scenario())


def test_waiting_viewers_time_out_together_then_wait_again() -> None:
    channel = Channel()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        early = [asyncio.create_task(channel.next(0, timeout=0.1)) for _ in range(3)]
        late = asyncio.create_task(channel.next(0, timeout=5))
        assert await asyncio.gather(*early) == [None] * 3
        assert loop.time() - started < 0.1 + 2 * TICK
        assert not late.done()  # woken with the others, it found its own time not up
        channel.publish(frame(1))
        got = await late
        assert got is not None
        assert got.sequence == 1

    asyncio.run(scenario())


def test_publishing_after_the_viewers_loop_closed_is_harmless() -> None:
    channel = Channel()

    async def leave_a_waiter() -> None:
        await channel.next(0, timeout=0.01)

    asyncio.run(leave_a_waiter())
    channel.publish(frame(1))
    channel.publish(frame(2))
    assert channel.latest is not None
    assert channel.latest.sequence == 2


def test_viewers_are_counted_and_reported() -> None:
    hub = Hub()
    channel = hub.channel(7)
    counts: list[int] = []
    channel.on_viewers_changed(counts.append)
    with channel.viewer(), channel.viewer():
        assert hub.viewer_counts() == {7: 2}
    assert channel.viewers == 0
    assert counts == [1, 2, 1, 0]
    assert hub.channel(7) is channel
