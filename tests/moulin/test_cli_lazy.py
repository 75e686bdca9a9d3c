"""`moulin` loads a command's module only when that command runs: the reader daemon on a
till box must not pay for the web server, the database layer or OpenCV."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moulin.cli import COMMANDS, app

# What a till box's reader has no use for.
HEAVY = {"cv2", "numpy", "sqlalchemy", "sqlmodel", "alembic", "fastapi", "starlette", "uvicorn"}


def _imported(*args: str) -> tuple[str, set[str]]:
    """Run the installed `moulin` command in a fresh interpreter; its output and the
    top-level packages it imported (from Python's own import log, -X importtime)."""
    script = Path(sys.executable).with_name("moulin")
    assert script.exists(), "the package is not installed (pip install -e .)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOULIN_")}
    env["PYTHONPROFILEIMPORTTIME"] = "1"
    done = subprocess.run([str(script), *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    modules = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "moulin" in modules  # the log is there: an empty one would prove nothing
    return done.stdout, modules


def test_reader_help_loads_no_web_server_database_or_opencv() -> None:
    out, modules = _imported("reader", "--help")
    assert "--device" in out
    assert "status" in out
    assert modules & HEAVY == set()


def test_the_server_still_loads_what_it_needs() -> None:
    # The same probe sees the heavy packages when the command does need them.
    out, modules = _imported("serve", "--help")
    assert "--workers" in out
    assert {"uvicorn", "sqlalchemy"} <= modules


def test_top_level_help_lists_every_command() -> None:
    out = CliRunner().invoke(app, ["--help"], prog_name="moulin").output
    for name in COMMANDS:
        assert f" {name} " in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_listed_command_loads(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"], prog_name="moulin")
    assert result.exit_code == 0, result.output
    assert f"Usage: moulin {name}" in result.output


def test_an_unknown_command_is_refused() -> None:
    result = CliRunner().invoke(app, ["nonsense"], prog_name="moulin")
    assert result.exit_code == 2
    assert "nonsense" in result.output
