"""`moulin camera-node` and `moulin mock camera` as an operator runs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from firmware_mocks.ip_camera import IPCamera
from school.db import make_engine
from school.devices import add_device
from school.migrate import upgrade
from school.models import DeviceKind
from tests import factories
from webcam import admin
from webcam.models import Camera


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "moulin.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def wait_for(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> httpx.Response:
    """The first answer from `url`. A loaded machine can take tens of seconds to start
    a server; one that never answers is stopped before its output is read (reading the
    pipe of a live process would wait for the test's time limit instead)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.terminate()
                out, _ = proc.communicate(timeout=20)
                pytest.fail(f"{url} never answered:\n{out}")
            time.sleep(0.2)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MOULIN_")}
    return {**base, "MOULIN_DATA_DIR": str(tmp_path / "var"), "MOULIN_SECRET_KEY": "k" * 40,
            "MOULIN_DATABASE_URL": f"sqlite:///{tmp_path / 'node.db'}"}


def test_a_camera_node_claims_and_serves_its_camera(env: dict[str, str],
                                                    tmp_path: Path) -> None:
    engine = make_engine(env["MOULIN_DATABASE_URL"])
    upgrade(engine)
    with IPCamera(width=160, height=120, fps=5) as mock, Session(engine) as session:
        school = factories.school(session)
        room = factories.classroom(session, school, "CP")
        camera = admin.add_camera(session=session, classroom=room, name="Cam", source=mock.url,
                                  secret_key=env["MOULIN_SECRET_KEY"],
                                  actor_user_id=factories.user(session, "a@b.org").id or 0)
        _, token = add_device(session=session, school=school, kind=DeviceKind.CAMERA_NODE,
                              name="node")
        session.commit()
        (tmp_path / "token").write_text(token)
        port = _free_port()
        args = ["camera-node", "--cameras", str(camera.id), "--port", str(port),
                "--token-file", str(tmp_path / "token")]
        with running(args, env) as proc:
            health = wait_for(f"http://127.0.0.1:{port}/healthz", proc)
            assert health.json() == {"status": "ok", "cameras": [camera.id]}
            session.rollback()  # a fresh snapshot: the node wrote meanwhile
            claimed = session.exec(select(Camera)).one()
            assert claimed.node_url == f"http://127.0.0.1:{port}"
            assert httpx.get(f"http://127.0.0.1:{port}/cameras/{camera.id}/stream.mjpg"
                             ).status_code == 403  # no signed URL, no stream
    engine.dispose()


def test_a_camera_node_refuses_a_bad_token(env: dict[str, str], tmp_path: Path) -> None:
    engine = make_engine(env["MOULIN_DATABASE_URL"])
    upgrade(engine)
    engine.dispose()
    (tmp_path / "token").write_text("not-a-token")
    done = subprocess.run(
        [sys.executable, "-m", "moulin.cli", "camera-node", "--cameras", "1",
         "--token-file", str(tmp_path / "token")],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "device token" in done.stderr


def test_mock_camera_command_serves_mjpeg(env: dict[str, str]) -> None:
    port = _free_port()
    with running(["mock", "camera", "--port", str(port), "--fps", "5", "--size", "320x240"],
                 env) as proc:
        wait_for(f"http://127.0.0.1:{port}/control/status", proc)
        status = httpx.get(f"http://127.0.0.1:{port}/control/status").json()
        assert (status["width"], status["height"], status["fps"]) == (320, 240, 5)
        snapshot = httpx.get(f"http://127.0.0.1:{port}/snapshot.jpg")
        assert snapshot.content.startswith(b"\xff\xd8")


def test_in_production_a_camera_node_refuses_a_clear_text_public_url(
        env: dict[str, str], tmp_path: Path) -> None:
    engine = make_engine(env["MOULIN_DATABASE_URL"])
    upgrade(engine)
    with Session(engine) as session:
        school = factories.school(session)
        room = factories.classroom(session, school, "CP")
        camera = admin.add_camera(session=session, classroom=room, name="Cam",
                                  source="http://10.0.0.7/video.mjpg",
                                  secret_key=env["MOULIN_SECRET_KEY"],
                                  actor_user_id=factories.user(session, "a@b.org").id or 0)
        _, token = add_device(session=session, school=school, kind=DeviceKind.CAMERA_NODE,
                              name="node")
        session.commit()
        camera_id = camera.id
    (tmp_path / "token").write_text(token)
    production = {**env, "MOULIN_ENVIRONMENT": "production", "MOULIN_CARD_MASTER_KEY": "ab" * 16}
    for extra in ([], ["--public-url", "http://node.example.org"]):
        done = subprocess.run(
            [sys.executable, "-m", "moulin.cli", "camera-node", "--cameras", str(camera_id),
             "--token-file", str(tmp_path / "token"), *extra],
            env=production, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 1
        assert "https://" in done.stderr
    with Session(engine) as session:
        assert session.exec(select(Camera)).one().node_url is None  # nothing claimed
    engine.dispose()
