"""A camera node next to the portal: it takes a camera over, the portal sends the parent
there with a signed URL, the node checks it without the session and re-checks the policy
while streaming; its viewers light the portal's 'on air' page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from parent_portal.app import create_app
from school.db import immediate_session
from school.devices import add_device
from school.models import DeviceKind, School, User
from school.settings import Settings
from school.web_headers import HSTS
from tests.conftest import FakeClock
from tests.webcam.conftest import Sources
from tests.webcam.live import CSRF_INPUT, CameraSchool, Reader, csrf, login, serve
from tests.webcam.test_api import views
from webcam.admin import claim_for_node
from webcam.models import Camera
from webcam.node import InsecureNode, create_node_app
from webcam.pipeline import FrameKind
from webcam.runtime import CameraRuntime, NodeRole
from webcam.tokens import TOKEN_TTL

LIMIT = 1.0


def wait_until(condition: object, timeout: float = 6.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def node(settings: Settings, engine: Engine, clock: FakeClock, equipped: CameraSchool,
         portal_app: FastAPI, base: str) -> Iterator[tuple[str, int, str]]:
    """A node serving the CP camera: (its base URL, the camera id, the device token)."""
    camera_id = equipped.cameras[0].id or 0
    with immediate_session(engine) as session:
        school = session.get(School, equipped.school.school.id)
        assert school is not None
        device, token = add_device(session=session, school=school, kind=DeviceKind.CAMERA_NODE,
                                   name="node-1")
        session.commit()
        role = NodeRole(device_id=device.id or 0, camera_ids=frozenset({camera_id}))
    app = create_node_app(engine=engine, secret_key=settings.effective_secret_key(),
                          node=role, clock=clock, open_source=Sources())
    with serve(app) as node_base:
        with immediate_session(engine) as session:
            device = session.merge(device)
            claim_for_node(session=session, device=device, camera_ids=[camera_id],
                           node_url=node_base)
            session.commit()
        runtime: CameraRuntime = app.state.cameras
        wait_until(lambda: runtime.serves(camera_id))
        portal: CameraRuntime = portal_app.state.cameras
        wait_until(lambda: not portal.serves(camera_id))  # the portal let go of it
        yield node_base, camera_id, token


def pair_screen(base: str, camera_id: int, device_token: str) -> httpx.Client:
    """The room's wall screen, set up once with the node's device token."""
    screen = httpx.Client(base_url=base)
    form = screen.get(f"/cameras/{camera_id}/on-air/pair")
    token = CSRF_INPUT.search(form.text)
    assert token is not None
    done = screen.post(f"/cameras/{camera_id}/on-air/pair",
                       data={"csrf_token": token.group(1), "token": device_token})
    assert done.status_code == 303
    assert done.headers["location"] == f"/cameras/{camera_id}/on-air"
    return screen


def node_url(client: httpx.Client, node_base: str, camera_id: int) -> str:
    page = client.get("/parent/cameras")
    csp = page.headers["content-security-policy"]
    assert f"img-src 'self' {node_base}" in csp
    match = re.search(rf'src="{re.escape(node_base)}(/cameras/{camera_id}/stream\.mjpg\?t=[^"]+)"',
                      page.text)
    assert match, page.text
    return match.group(1).replace("&amp;", "&")


def test_the_portal_sends_the_parent_to_the_node(
    base: str, node: tuple[str, int, str], engine: Engine, clock: FakeClock
) -> None:
    node_base, camera_id, _ = node
    parent = login(base, "parent@example.org")
    path = node_url(parent, node_base, camera_id)
    with Reader(node_base, path, cookie=None) as reader:  # no cookie: the URL is the grant
        assert reader.status == 200
        reader.start().wait_for(FrameKind.LIVE)
    with Reader(base, path, parent.cookies.get("moulin_session")) as at_portal:
        assert at_portal.status == 403  # a node's URL is no good at the portal
    other = path.replace(f"/cameras/{camera_id}/", "/cameras/2/")
    assert httpx.get(node_base + other).status_code == 403
    assert httpx.get(node_base + path.replace("stream.mjpg", "snapshot.jpg")).status_code == 200
    clock.advance(seconds=TOKEN_TTL + 1)
    assert httpx.get(node_base + path).status_code == 403
    rows = views(engine, settled=2)
    assert {(r.via, r.user_id) for r in rows} == {("node", rows[0].user_id)}
    parent.close()


def test_the_node_obeys_a_pause_and_lights_the_on_air_page(
    base: str, node: tuple[str, int, str], engine: Engine
) -> None:
    node_base, camera_id, device_token = node
    parent = login(base, "parent@example.org")
    screen = pair_screen(base, camera_id, device_token)
    on_air = f"/cameras/{camera_id}/on-air"
    assert 'data-lit="no"' in screen.get(on_air).text
    with Reader(node_base, node_url(parent, node_base, camera_id), cookie=None) as reader:
        reader.start().wait_for(FrameKind.LIVE)
        wait_until(lambda: 'data-lit="yes"' in screen.get(on_air).text, timeout=4)
        mark, before = len(reader.parts), time.monotonic()
        with Session(engine) as session:
            camera = session.get(Camera, camera_id)
            assert camera is not None
            camera.paused = True
            session.add(camera)
            session.commit()
        assert reader.wait_for(FrameKind.PAUSED, after=mark) - before < LIMIT
    wait_until(lambda: 'data-lit="no"' in screen.get(on_air).text, timeout=4)
    screen.close()
    parent.close()


@pytest.mark.parametrize("how", ["logout", "deactivated"])
def test_a_node_stream_ends_with_the_portal_session_that_asked_for_it(
    base: str, node: tuple[str, int, str], engine: Engine, how: str
) -> None:
    node_base, camera_id, _ = node
    parent = login(base, "parent@example.org")
    path = node_url(parent, node_base, camera_id)
    with Reader(node_base, path, cookie=None) as reader:
        assert reader.status == 200
        reader.start().wait_for(FrameKind.LIVE)
        if how == "logout":
            done = parent.post("/logout", data={"csrf_token": csrf(parent, "/parent/cameras")})
        else:
            done = httpx.Response(303)
            deactivate(engine, "parent@example.org")  # as a script would: sessions untouched
        assert done.status_code == 303
        committed = time.monotonic()
        assert reader.wait_end() - committed < LIMIT
        assert reader.parts[-1].kind is FrameKind.ENDED
    reason = "signed_out" if how == "logout" else "account_disabled"
    assert [(r.via, r.end_reason) for r in views(engine, settled=1)] == [("node", reason)]
    # The URL was good for a minute; it is worth nothing once its session has ended.
    assert httpx.get(node_base + path).status_code == 403
    parent.close()


def deactivate(engine: Engine, email: str) -> None:
    with immediate_session(engine) as session:
        user = session.exec(select(User).where(User.email == email)).one()
        user.is_active = False
        session.add(user)
        session.commit()


SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
                    "referrer-policy": "same-origin"}


def test_the_node_sends_the_portals_security_headers(
    base: str, node: tuple[str, int, str]
) -> None:
    node_base, camera_id, _ = node
    portal_page = httpx.get(base + "/login")
    parent = login(base, "parent@example.org")
    path = node_url(parent, node_base, camera_id)
    with httpx.stream("GET", node_base + path) as stream:
        assert stream.status_code == 200
        answers = [stream.headers, httpx.get(node_base + "/healthz").headers,
                   httpx.get(node_base + f"/cameras/{camera_id}/stream.mjpg").headers]
    for headers in answers:
        for name, value in SECURITY_HEADERS.items():
            assert headers[name] == value == portal_page.headers[name]
        assert headers["content-security-policy"] == portal_page.headers[
            "content-security-policy"]
        assert "strict-transport-security" not in headers  # plain HTTP: a test box
    parent.close()


def test_in_production_a_node_needs_an_https_public_url(
    settings: Settings, engine: Engine, equipped: CameraSchool
) -> None:
    role = NodeRole(device_id=1, camera_ids=frozenset({equipped.cameras[0].id or 0}))
    for url in ("http://node.example.org:8100", "", "HTTP://node.example.org"):
        with pytest.raises(InsecureNode, match="https://"):
            create_node_app(engine=engine, secret_key=settings.effective_secret_key(),
                            node=role, public_url=url, production=True)
    app = create_node_app(engine=engine, secret_key=settings.effective_secret_key(), node=role,
                          public_url="https://node.example.org", production=True)
    with TestClient(app) as client:
        headers = client.get("/healthz").headers
    assert headers["strict-transport-security"] == HSTS
    assert headers["x-frame-options"] == "DENY"


def test_in_production_the_portal_hands_out_no_clear_text_node_url(
    settings: Settings, engine: Engine, clock: FakeClock, node: tuple[str, int, str]
) -> None:
    node_base, camera_id, _ = node
    assert node_base.startswith("http://")
    # Plain HTTP to the portal too, so that the test's browser keeps its cookies; the
    # node's address is what is judged here.
    production = settings.model_copy(update={"environment": "production", "https": False,
                                             "card_master_key": "ab" * 16})
    with serve(create_app(production, engine, clock=clock)) as portal:
        parent = login(portal, "parent@example.org")
        page = parent.get("/parent/cameras")
        assert page.status_code == 200
        assert node_base not in page.text
        assert f"/cameras/{camera_id}/stream.mjpg" not in page.text
        parent.close()
