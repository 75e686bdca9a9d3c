"""No camera address or password ever leaves the server: not in any page a parent or a
member of staff can reach, not in an API answer, not in the audit log, not in the
database in clear."""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.webcam.live import SECRET, CameraSchool, login

USERS = ["parent@example.org", "other@example.org", "teacher@example.org",
         "cashier@example.org", "office@example.org", "admin@example.org"]
LINK = re.compile(r'(?:href|src)="([^"]+)"')  # form actions are POST-only


def crawl(client: httpx.Client, start: str = "/", limit: int = 200) -> dict[str, str]:
    """Every same-site page reachable by following links from `start`, with its body
    (images and streams are fetched once, not followed)."""
    seen: dict[str, str] = {}
    queue = deque([start])
    while queue and len(seen) < limit:
        path = queue.popleft()
        if path in seen or path.startswith(("/logout", "/static/")):
            continue
        if ".mjpg" in path:
            with client.stream("GET", path) as response:
                seen[path] = next(response.iter_raw(), b"")[:2000].decode("latin-1")
            continue
        response = client.get(path, follow_redirects=True)
        seen[path] = response.text if "image" not in response.headers.get(
            "content-type", "") else ""
        for link in LINK.findall(response.text):
            target = urljoin(path, link.replace("&amp;", "&")).partition("#")[0]
            parts = urlsplit(target)
            if not parts.netloc and parts.path.startswith("/") and "?lang=" not in target:
                queue.append(target)
    return seen


def leaks(text: str, school: CameraSchool) -> list[str]:
    found = [SECRET] if SECRET in text else []
    found += ["admin:"] if "admin:" in text else []
    found += [m.url for m in school.mocks if f":{m.port}" in text]
    return found


@pytest.mark.parametrize("email", USERS)
def test_no_page_shows_a_camera_address(base: str, equipped: CameraSchool, email: str) -> None:
    client = login(base, email)
    pages = crawl(client)
    client.close()
    assert len(pages) >= 4
    if email != "cashier@example.org":
        assert any("/cameras/" in p for p in pages)
    assert {path: leaks(body, equipped) for path, body in pages.items()
            if leaks(body, equipped)} == {}


def test_staff_pages_for_cameras_are_reached(base: str, equipped: CameraSchool) -> None:
    client = login(base, "office@example.org")
    pages = crawl(client)
    client.close()
    for camera in equipped.cameras:
        assert f"/staff/cameras/{camera.id}" in pages
    assert "Cam CP" in pages[f"/staff/cameras/{equipped.cameras[0].id}"]


def test_api_answers_and_the_audit_log_hold_no_address(
    base: str, equipped: CameraSchool, engine: Engine
) -> None:
    client = login(base, "other@example.org")
    client.headers["accept"] = "application/json"
    answers = [client.get(f"/cameras/{c.id}/{kind}?t=1.x").text
               for c in equipped.cameras for kind in ("stream.mjpg", "snapshot.jpg")]
    client.close()
    assert all(not leaks(a, equipped) for a in answers)
    with engine.connect() as conn:
        audit = " ".join(str(row) for row in conn.execute(text("SELECT * FROM audit_event")))
        stored = " ".join(row[0] for row in conn.execute(text("SELECT source_sealed FROM camera")))
    assert "camera.add" in audit
    assert leaks(audit, equipped) == []
    assert leaks(stored, equipped) == []
