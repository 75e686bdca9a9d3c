"""The systemd units in deploy/: files a service creates are not readable by others."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))


def umask_of(unit: Path) -> int:
    found = re.findall(r"^UMask=(0[0-7]{3})$", unit.read_text(), re.MULTILINE)
    assert len(found) == 1, f"{unit.name}: one UMask= line"
    return int(found[0], 8)


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_every_unit_keeps_others_out_of_its_files(unit: Path) -> None:
    assert umask_of(unit) & 0o007 == 0o007


def test_the_servers_database_is_created_for_its_owner_only(tmp_path: Path) -> None:
    """`moulin db upgrade` under the server unit's umask, as systemd would run it."""
    mask = umask_of(DEPLOY / "moulin-server.service")
    db = tmp_path / "moulin.db"
    env = {**os.environ, "MOULIN_DATABASE_URL": f"sqlite:///{db}"}
    moulin = Path(sys.executable).parent / "moulin"
    subprocess.run(["sh", "-c", f"umask {mask:04o} && exec {moulin} db upgrade"], env=env,
                   check=True, capture_output=True, timeout=120)
    assert stat.S_IMODE(db.stat().st_mode) & 0o077 == 0
