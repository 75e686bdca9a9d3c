"""Debian's `motion` relaying the mock camera, for the comparison in `bench/stream.py`.

A minimal configuration in a temporary folder: the camera's MJPEG URL as `netcam_url`,
its stream on a loopback port at up to 10 frames a second, no pictures, no movies, no
web control, in the foreground. Motion detection itself cannot be switched off; it runs
as it would for anyone using motion as a relay.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

logger = logging.getLogger("bench.motion")

INSTALL_HINT = "apt-get install motion (or: bash scripts/system-deps.sh bench)"


def installed() -> bool:
    return shutil.which("motion") is not None


def config(camera_url: str, port: int, folder: Path) -> str:
    return "\n".join([
        "daemon off", "setup_mode off", "log_level 4", f"log_file {folder / 'motion.log'}",
        f"target_dir {folder / 'out'}", f"pid_file {folder / 'motion.pid'}",
        f"netcam_url {camera_url}", "width 640", "height 480", "framerate 10",
        f"stream_port {port}", "stream_localhost on", "stream_maxrate 10",
        "stream_quality 80", "stream_motion off", "stream_auth_method 0",
        "webcontrol_port 0", "picture_output off", "movie_output off",
        "snapshot_interval 0", "",
    ])


@contextmanager
def relaying(camera_url: str, folder: Path) -> Iterator[tuple[str, int]]:
    """Run motion on `camera_url`; yield its stream's URL and its process id."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "motion.conf"
    conf.write_text(config(camera_url, port, folder))
    with (folder / "motion.out").open("wb") as out:
        proc = subprocess.Popen(["motion", "-n", "-c", str(conf)], stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_frames(url, proc, folder)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_frames(url: str, proc: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with httpx.stream("GET", url, timeout=2) as response:
                for chunk in response.iter_bytes():
                    if b"image/jpeg" in chunk:
                        return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    log = folder / "motion.log"
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"motion gave no frame within 30 s:\n{tail}")
