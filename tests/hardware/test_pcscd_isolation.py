"""Each test process has a /run/pcscd of its own (tests/conftest.py), so the pcscd of one
xdist worker, or of another test run on the machine, is never the one a test talks to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hardware.pcscd import RUN_DIR, Pcscd, own_run_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a mount namespace needs root")


def _mounts(pid: str) -> list[str]:
    return [line.split()[4] for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()]


def test_this_process_has_its_own_run_pcscd() -> None:
    assert own_run_dir()  # done at start-up: asking again changes nothing
    assert str(RUN_DIR) in _mounts("self")
    # The process that started this one (the xdist controller, or the shell) has none.
    assert str(RUN_DIR) not in _mounts(str(os.getppid()))
    assert os.readlink("/proc/self/ns/mnt") != os.readlink(f"/proc/{os.getppid()}/ns/mnt")


def test_our_pcscd_is_invisible_outside(pcscd: Pcscd) -> None:
    ours = (RUN_DIR / "pcscd.pid").read_text().replace("\x00", "").strip()
    assert ours == str(pcscd.pid)
    # A process started from this one but outside its namespace (in the parent's, through
    # nsenter) does not see our pcscd's socket.
    parent = str(os.getppid())
    outside = subprocess.run(
        ["nsenter", f"--mount=/proc/{parent}/ns/mnt", sys.executable, "-c",
         f"import os; print(os.path.exists('{RUN_DIR}/pcscd.comm') and "
         f"open('{RUN_DIR}/pcscd.pid').read().strip('\\x00 \\n') == '{ours}')"],
        capture_output=True, text=True, check=True,
    )
    assert outside.stdout.strip() == "False"
