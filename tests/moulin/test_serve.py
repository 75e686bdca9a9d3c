"""`moulin serve` as an operator runs it: a real server process on a migrated database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from school.db import make_engine
from school.migrate import upgrade
from tests.moulin.test_camera_commands import _free_port, running, wait_for


@pytest.mark.parametrize("access_log", [None, "true"])
def test_a_line_for_every_request_only_when_asked(tmp_path: Path,
                                                  access_log: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOULIN_")}
    env |= {"MOULIN_DATA_DIR": str(tmp_path / "var"), "MOULIN_SECRET_KEY": "k" * 40,
            "MOULIN_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "MOULIN_CAPTURE_CAMERAS": "false"}
    if access_log:
        env["MOULIN_ACCESS_LOG"] = access_log
    engine = make_engine(env["MOULIN_DATABASE_URL"])
    upgrade(engine)
    engine.dispose()
    port = _free_port()
    with running(["serve", "--port", str(port)], env) as proc:
        assert wait_for(f"http://127.0.0.1:{port}/healthz", proc).status_code == 200
        assert wait_for(f"http://127.0.0.1:{port}/healthz", proc).status_code == 200
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "Application startup complete" in out
    lines = [line for line in out.splitlines() if '"GET /healthz HTTP/1.1" 200' in line]
    assert len(lines) == (2 if access_log else 0), out
