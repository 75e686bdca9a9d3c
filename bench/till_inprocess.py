"""CPU time and rate of taps decided in-process (`Till.tap` on SQLite with its group
commit, 8 threads, no HTTP): less sensitive to a shared machine's load than the HTTP
benchmark's taps/s, since the CPU time counts only this process's work.

    python bench/till_inprocess.py [--taps 3000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session, select

from cardpay.sun import Keyring
from cardpay.till import TapRequest, Till
from school.db import make_engine
from school.models import Device

sys.path.insert(0, str(Path(__file__).resolve().parent))
from till import seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=3000)
    taps = parser.parse_args().taps
    with tempfile.TemporaryDirectory(prefix="moulin-bench-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        shares, _ = seed(url, 1)
        uids = shares[0]
        engine = make_engine(url)
        with Session(engine, expire_on_commit=False) as session:
            device = session.exec(select(Device)).one()
            session.expunge(device)
        till = Till(engine=engine, keyring=Keyring(b"k" * 32))

        def tap(n: int) -> bool:
            request = TapRequest(tap_id=str(uuid.uuid4()), read_at=datetime.now(UTC),
                                 uid=uids[n % len(uids)])
            return till.tap(device, request).accepted

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(tap, range(300)))  # warm-up, not counted
            cpu, wall = time.process_time(), time.perf_counter()
            accepted = sum(pool.map(tap, range(taps)))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        till.close()
        engine.dispose()
    print(f'{{"cpu_ms_per_tap": {1000 * cpu / taps:.3f}, "taps_per_s": {taps / wall:.0f}, '
          f'"accepted": {accepted}, "taps": {taps}}}')


if __name__ == "__main__":
    main()
