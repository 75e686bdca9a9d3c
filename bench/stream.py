"""Benchmark: one 640x480 camera at 10 fps, through the whole portal, to N viewers.

    python bench/stream.py --viewers 1000      # about three minutes, motion's run included
    python bench/stream.py --quick             # 50 viewers, under a minute

Prints one JSON line: `viewers`, `fps_p5` (5th percentile of the frame rate each viewer
received), `latency_p50_ms` (capture to delivery, from the `X-Captured-At` part header
the pipeline writes, on one machine's clock), `server_cpu_pct` (the server process, 100 =
one core; `server_loop_cpu_pct` its event loop's thread alone), `client_cpu_pct` (all
load processes; `client_process_cpu_max_pct` the busiest one, which must stay well under
100 for the client not to be the bottleneck), `published_fps` (the distinct frames the
viewers saw: below 10, the capture fell behind; above the viewers' rate, they skipped),
`motion_fps_p5` (the same load against Debian's `motion` relaying the same mock camera;
null when motion is not installed or with `--no-motion`) with `motion_cpu_pct` and
`motion_refused`, and the machine's 1-minute load average as each window opened
(`load_avg`, `motion_load_avg`: motion runs a thread per viewer, which shows there).

The server is `moulin serve` on SQLite in its own process, so every stream goes through
the session, the signed URL the camera page gives, the access policy (at open and every
half second) and the viewing log. The first 50 viewers sign in through the login form;
for the others the bench opens the same server-side sessions directly in the database
(the login's argon2 costs about 0.3 s of CPU each, which would measure logins, not
streaming). The camera is the mock IP camera, in this process. The load comes from
several processes, each an event loop of raw-socket viewers (`bench/mjpeg_load.py`).
Loopback only.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

import mjpeg_load  # noqa: E402
import motion_relay  # noqa: E402
from mjpeg_load import Login  # noqa: E402
from sqlmodel import Session  # noqa: E402

from firmware_mocks.ip_camera import IPCamera  # noqa: E402
from parent_portal.sessions import start_session  # noqa: E402
from school.db import make_engine  # noqa: E402
from school.migrate import upgrade  # noqa: E402
from school.models import Classroom, Guardianship, Pupil, School, User  # noqa: E402
from school.security import hash_password  # noqa: E402
from school.settings import Settings  # noqa: E402
from webcam.models import BroadcastSlot, Camera, CameraConsent, WebcamSettings  # noqa: E402
from webcam.sealing import seal  # noqa: E402

logger = logging.getLogger("bench.stream")
PASSWORD = "bench password 1"  # noqa: S105 - a throwaway database
SECRET = "bench-secret-" + "x" * 40
HTTP_LOGINS = 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(url: str, camera_url: str, viewers: int, settings: Settings) -> list[Login]:
    """A school with one room, its camera and `viewers` parents; the logins to use."""
    engine = make_engine(url)
    upgrade(engine)
    now, hashed = datetime.now(UTC), hash_password(PASSWORD)
    with Session(engine) as session:
        school = School(slug="bench", name="École du banc d'essai")
        session.add(school)
        session.flush()
        room = Classroom(school_id=school.id or 0, name="CP")
        session.add(room)
        session.flush()
        session.add(WebcamSettings(school_id=school.id or 0, session_minutes=240,
                                   daily_quota_minutes=1440))
        session.add(Camera(school_id=school.id or 0, classroom_id=room.id or 0, name="CP",
                           source_sealed=seal(camera_url, settings.effective_secret_key())))
        session.add_all(BroadcastSlot(classroom_id=room.id or 0, weekday=d, starts_at=clock_time(0),
                                      ends_at=clock_time(23, 59, 59)) for d in range(7))
        users = [User(email=f"parent{i}@bench.moulin", full_name=f"Parent {i}",
                      password_hash=hashed) for i in range(viewers)]
        pupils = [Pupil(school_id=school.id or 0, classroom_id=room.id, external_ref=f"P{i}",
                        first_name="Enfant", last_name=str(i)) for i in range(viewers)]
        session.add_all([*users, *pupils])
        session.flush()
        for user, pupil in zip(users, pupils, strict=True):
            session.add(Guardianship(user_id=user.id or 0, pupil_id=pupil.id or 0,
                                     starts_on=now.date().replace(month=1, day=1)))
            session.add(CameraConsent(classroom_id=room.id or 0, user_id=user.id or 0,
                                      capacity="guardian", document_ref="bench", given_at=now,
                                      recorded_by_user_id=users[0].id or 0))
        logins: list[Login] = []
        for index, user in enumerate(users):
            if index < HTTP_LOGINS:
                logins.append((user.email, PASSWORD, None))
            else:
                _, token = start_session(session=session, user=user, now=now, settings=settings,
                                         ip="127.0.0.1", user_agent="moulin-bench")
                logins.append((user.email, None, token))
        session.commit()
    engine.dispose()
    return logins


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU time of a process (or of one of its threads) so far."""
    stat = Path(f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moulin.cli", "serve", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start:\n{log.read_text()}")
        time.sleep(0.2)


def load(base: str, logins: list[Login | None], processes: int, seconds: float,
         server_pid: int) -> dict[str, Any]:
    """Run the viewers in `processes` processes; measure for `seconds` once all are in.
    The server's main thread is its event loop (uvicorn's)."""
    ready, start = mp.Semaphore(0), mp.Event()
    results: mp.Queue[dict[str, Any]] = mp.Queue()
    slices = [logins[i::processes] for i in range(processes)]
    workers = [mp.Process(target=mjpeg_load.worker, args=(base, part, ready, start, seconds,
                                                          results), daemon=True)
               for part in slices if part]
    for w in workers:
        w.start()
    for _ in workers:
        if not ready.acquire(timeout=900):
            raise RuntimeError("viewers did not all connect")
    time.sleep(3)  # warm-up: let every stream reach steady state
    cpu0, loop0 = cpu_seconds(server_pid), cpu_seconds(server_pid, server_pid)
    load_avg = os.getloadavg()[0]  # other people's work on the machine, and the warm-up's
    start.set()
    logger.info("measuring for %ss", seconds)
    time.sleep(seconds)
    cpu, loop = cpu_seconds(server_pid) - cpu0, cpu_seconds(server_pid, server_pid) - loop0
    parts = [results.get(timeout=120) for _ in workers]
    errors = [p["error"] for p in parts if "error" in p]
    if errors:
        raise RuntimeError(f"load processes failed: {errors}")
    for w in workers:
        w.join(timeout=30)
    fps = sorted(x for p in parts for x in p["fps"])
    lat = sorted(x for p in parts for x in p["latencies"])
    return {
        "viewers": len(fps), "fps_p5": round(fps[max(0, len(fps) // 20 - 1)], 2),
        "fps_mean": round(statistics.fmean(fps), 2),
        "latency_p50_ms": round(1000 * lat[len(lat) // 2], 1) if lat else None,
        "latency_p95_ms": round(1000 * lat[len(lat) * 19 // 20], 1) if lat else None,
        "server_cpu_pct": round(100 * cpu / seconds, 1),
        "server_loop_cpu_pct": round(100 * loop / seconds, 1),
        "client_cpu_pct": round(100 * sum(p["cpu_seconds"] for p in parts) / seconds, 1),
        "client_process_cpu_max_pct": round(100 * max(p["cpu_seconds"] for p in parts)
                                            / seconds, 1),
        "published_fps": round(len(set().union(*(p["seen"] for p in parts))) / seconds, 2),
        "refused": sum(s != 200 for p in parts for s in p["statuses"]),
        "load_avg": round(load_avg, 2),
    }


def measure_moulin(tmp: str, camera: IPCamera, viewers: int, processes: int,
                   seconds: float) -> dict[str, Any]:
    url = f"sqlite:///{tmp}/bench.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOULIN_")}
    env.update(MOULIN_DATA_DIR=tmp, MOULIN_DATABASE_URL=url, MOULIN_SECRET_KEY=SECRET,
               MOULIN_ENVIRONMENT="development",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    settings = Settings(data_dir=Path(tmp), database_url=url, secret_key=SECRET)
    logger.info("seeding %s viewers", viewers)
    logins: list[Login | None] = list(seed(url, camera.url, viewers, settings))
    port = free_port()
    server = start_server(env, port, Path(tmp) / "server.log")
    try:
        logger.info("server up; connecting %s viewers from %s processes", viewers, processes)
        return load(f"http://127.0.0.1:{port}", logins, processes, seconds, server.pid)
    except BaseException:
        kept = Path(tempfile.gettempdir()) / "moulin-bench-server.log"
        shutil.copy(Path(tmp) / "server.log", kept)
        raise
    finally:
        server.terminate()
        server.wait(timeout=30)


def measure_motion(tmp: str, camera: IPCamera, viewers: int, processes: int,
                   seconds: float) -> dict[str, Any]:
    """The same load against Debian's motion relaying the same camera (no login there)."""
    with motion_relay.relaying(camera.url, Path(tmp) / "motion") as (url, pid):
        logger.info("motion up; connecting %s viewers from %s processes", viewers, processes)
        got = load(url, [None] * viewers, processes, seconds, pid)
    return {"motion_fps_p5": got["fps_p5"], "motion_fps_mean": got["fps_mean"],
            "motion_cpu_pct": got["server_cpu_pct"], "motion_refused": got["refused"],
            "motion_load_avg": got["load_avg"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="50 viewers, 10 s: < 1 minute")
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window")
    parser.add_argument("--processes", type=int, default=max(2, os.cpu_count() or 2))
    parser.add_argument("--no-motion", action="store_true", help="skip the run against motion")
    args = parser.parse_args()
    viewers, seconds = (50, 10.0) if args.quick else (args.viewers, args.seconds)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="moulin-bench-") as tmp, \
            IPCamera(width=640, height=480, fps=10) as camera:
        result = measure_moulin(tmp, camera, viewers, args.processes, seconds)
        result["motion_fps_p5"] = None
        if not args.no_motion and not motion_relay.installed():
            logger.warning("motion is not installed, so motion_fps_p5 is null: %s",
                           motion_relay.INSTALL_HINT)
        elif not args.no_motion:
            result.update(measure_motion(tmp, camera, viewers, args.processes, seconds))
    result.update(seconds=seconds, processes=args.processes, nproc=os.cpu_count())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
