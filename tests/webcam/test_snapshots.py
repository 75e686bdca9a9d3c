"""A snapshot is a view: it lights 'on air', counts against the daily quota, is logged
(a viewer's repeated snapshots of a camera in one entry) and is limited to a few a
minute per viewer. Through the whole portal over HTTP."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy.engine import Engine

from tests.conftest import FakeClock
from tests.webcam.live import CameraSchool, login, stream_urls
from tests.webcam.test_api import views
from tests.webcam.test_stream_ends import set_quota
from webcam.snapshots import PER_MINUTE, SNAPSHOT_VIEW


def snapshot_url(client: httpx.Client, camera_id: int) -> str:
    """A fresh signed URL, as the camera page gives one."""
    return stream_urls(client.get("/parent/cameras").text)[camera_id].replace(
        "stream.mjpg", "snapshot.jpg")


def lit(staff: httpx.Client, camera_id: int) -> bool:
    page = staff.get(f"/cameras/{camera_id}/on-air")
    assert page.status_code == 200
    return 'data-lit="yes"' in page.text


def test_a_snapshot_lights_on_air_until_its_view_ends(
    base: str, equipped: CameraSchool, clock: FakeClock
) -> None:
    cp = equipped.cameras[0].id or 0
    parent, teacher = login(base, "parent@example.org"), login(base, "teacher@example.org")
    assert not lit(teacher, cp)
    got = parent.get(snapshot_url(parent, cp))
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/jpeg"
    assert lit(teacher, cp)
    clock.advance(seconds=SNAPSHOT_VIEW.total_seconds() - 1)
    assert lit(teacher, cp)
    clock.advance(seconds=1)
    assert not lit(teacher, cp)
    for client in (parent, teacher):
        client.close()


def test_repeated_snapshots_make_one_log_entry_and_are_limited_per_minute(
    base: str, equipped: CameraSchool, engine: Engine, clock: FakeClock
) -> None:
    cp = equipped.cameras[0].id or 0
    parent = login(base, "parent@example.org")
    start = clock()
    for _ in range(PER_MINUTE):
        assert parent.get(snapshot_url(parent, cp)).status_code == 200
        clock.advance(seconds=5)
    refused = parent.get(snapshot_url(parent, cp), headers={"accept": "application/json"})
    assert refused.status_code == 429
    rows = views(engine, settled=1)
    assert len(rows) == 1  # five snapshots, one entry, from the first to the last's end
    last = start + timedelta(seconds=5 * (PER_MINUTE - 1))
    assert (rows[0].started_at, rows[0].ended_at) == (start, last + SNAPSHOT_VIEW)
    assert rows[0].end_reason == "snapshot"
    clock.advance(minutes=1)  # a minute on: allowed again, and a new entry
    assert parent.get(snapshot_url(parent, cp)).status_code == 200
    assert len(views(engine, settled=2)) == 2
    parent.close()


def test_snapshots_count_against_the_daily_quota(
    base: str, equipped: CameraSchool, engine: Engine, clock: FakeClock
) -> None:
    set_quota(engine, equipped.school.school.id or 0, 1)
    cp = equipped.cameras[0].id or 0
    parent = login(base, "parent@example.org")
    assert parent.get(snapshot_url(parent, cp)).status_code == 200
    clock.advance(seconds=35)  # the first counted 30 s
    url = snapshot_url(parent, cp)
    assert parent.get(url).status_code == 200
    clock.advance(seconds=30)  # and the second 30 s more: the minute is used up
    refused = parent.get(url, headers={"accept": "application/json"})
    assert refused.status_code == 429
    assert "quota_exhausted" in parent.get("/parent/cameras").text
    parent.close()
