"""Benchmark of the till API: taps from several tills through uvicorn, on loopback.

Prints one JSON line:
  taps_per_s        unthrottled: every till sends its next tap as soon as it has a verdict
  p50_ms, p99_ms    latency at the offered rate (--rate, default 100 taps/s), open loop:
                    from when a tap was due to its verdict (a resend is a request of its own),
                    after a second of warm-up
  first_tap_ms      the first tap's latency, just after the server started
  double_charges    tap ids charged more than once (some taps are deliberately resent)
  lost              taps answered 'accepted' that the ledger does not hold
  raw_debits_per_s  the same durable debit made with the database driver alone: the ceiling
  db                sqlite or postgres

  ratio             taps_per_s / raw_debits_per_s
  workers, schools  server processes; schools the tills are spread over
  durable           whether commits reach the disk (SQLite: always; PostgreSQL: --durable)

    python bench/till.py [--quick] [--db sqlite|postgres] [--durable] [--schools K]
                         [--tills 8] [--rate 100] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session, func, select

from cardpay import cards
from cardpay.accounts import pupil_account, school_account
from cardpay.integrity import check_integrity
from cardpay.ledger import post
from cardpay.models import (
    AccountKind,
    CanteenSettings,
    CardKind,
    LedgerTransaction,
    Tap,
    TransactionKind,
)
from school.db import make_engine
from school.devices import add_device
from school.migrate import upgrade
from school.models import Classroom, DeviceKind, Pupil, School

PUPILS = 200
PRICE = 350
WARM_UP_S = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(url: str, tills: int, schools: int = 1) -> tuple[list[list[str]], list[str]]:
    """Schools open every day and hour, pupils with cards and money (PUPILS in all), and
    one token a till, the tills dealt round the schools; for each till, the cards it
    taps (its share of its school's) and its token."""
    engine = make_engine(url)
    upgrade(engine)
    cards_of: list[list[str]] = []
    tokens: list[str] = []
    with Session(engine) as session:
        for n in range(schools):
            cards_of.append(_school(session, n, max(1, PUPILS // schools)))
        school_list = session.exec(select(School).order_by(School.id)).all()
        for n in range(tills):
            tokens.append(add_device(session=session, school=school_list[n % schools],
                                     kind=DeviceKind.TILL, name=f"till-{n}")[1])
        session.commit()
    engine.dispose()
    shares = []
    for n in range(tills):
        mates = list(range(n % schools, tills, schools))  # the tills of this one's school
        shares.append(cards_of[n % schools][mates.index(n)::len(mates)] or cards_of[n % schools])
    return shares, tokens


def _school(session: Session, n: int, pupils: int) -> list[str]:
    school = School(slug=f"bench-{n}", name=f"Bench {n}", timezone="Europe/Paris")
    session.add(school)
    session.flush()
    assert school.id is not None
    room = Classroom(school_id=school.id, name="CM2")
    session.add(room)
    session.add(
        CanteenSettings(
            school_id=school.id,
            default_price_cents=PRICE,
            open_weekdays="0123456",
            service_start=dt_time(0, 0),
            service_end=dt_time(23, 59, 59),
            one_meal_per_day=False,
            retap_window_seconds=0,
        )
    )
    session.flush()
    cash = school_account(session=session, school_id=school.id, kind=AccountKind.CASH_DRAWER)
    uids = []
    for i in range(pupils):
        pupil = Pupil(
            school_id=school.id,
            external_ref=f"B{n}-{i}",
            first_name=f"P{i}",
            last_name="Bench",
            classroom_id=room.id,
        )
        session.add(pupil)
        session.flush()
        uid = f"AB{n:02X}{i:04X}"
        cards.issue_card(session=session, pupil=pupil, uid=uid, kind=CardKind.UID)
        post(
            session=session,
            school_id=school.id,
            kind=TransactionKind.TOPUP,
            client_id=f"seed-{n}-{i}",
            legs=[
                (pupil_account(session=session, pupil=pupil), 10_000_000),
                (cash, -10_000_000),
            ],
        )
        uids.append(uid)
    return uids


def raw_debits(url: str, seconds: float) -> float:
    """Durable meal debits through the database driver alone, one transaction each: the
    rows the ledger writes for a meal (two balances, the floor checked in the update, a
    transaction, two postings), with no HTTP, no SQLAlchemy and none of the till's
    checks. The ceiling a tap is measured against."""
    engine = make_engine(url)
    with Session(engine) as session:
        school = session.exec(select(School).order_by(School.id)).first()
        assert school is not None
        pupil = session.exec(select(Pupil).where(Pupil.school_id == school.id)).first()
        assert school.id is not None
        assert pupil is not None
        ids = (
            school.id,
            pupil_account(session=session, pupil=pupil).id,
            school_account(session=session, school_id=school.id,
                           kind=AccountKind.MEAL_REVENUE).id,
        )
        session.commit()
    pooled = engine.raw_connection()  # with the engine's settings: WAL, synchronous=FULL
    try:
        rate = _debit_loop(pooled.driver_connection, engine.dialect.name == "sqlite", ids,
                           seconds)
    finally:
        pooled.close()
        engine.dispose()
    return rate


# The ledger's own durable debit: the pupil's balance (floor in the UPDATE), the
# transaction and its two postings; meal revenue keeps no balance on its row.
_DEBIT_SQL = (
    "UPDATE account SET balance_cents = balance_cents + ? WHERE id = ?"
    " AND (floor_cents IS NULL OR balance_cents + ? >= floor_cents)",
    "INSERT INTO ledger_transaction (school_id, kind, client_id, created_at, occurred_at,"
    " memo) VALUES (?, 'meal', ?, ?, ?, '') RETURNING id",
    "INSERT INTO posting (transaction_id, account_id, amount_cents) VALUES (?, ?, ?)",
)


def _debit_loop(dbapi: Any, sqlite: bool, ids: tuple[int, int | None, int | None],
                seconds: float) -> float:
    school_id, account_id, revenue_id = ids
    debit, transaction, posting = (
        sql if sqlite else sql.replace("?", "%s") for sql in _DEBIT_SQL
    )
    cursor = dbapi.cursor()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        now: object = datetime.now(UTC)
        if sqlite:  # stored as naive UTC text, as the application stores it
            now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        if sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        cursor.execute(debit, (-PRICE, account_id, -PRICE))
        assert cursor.rowcount == 1
        cursor.execute(transaction, (school_id, f"raw-{uuid.uuid4()}", now, now))
        transaction_id = cursor.fetchone()[0]
        cursor.executemany(posting, [(transaction_id, account_id, -PRICE),
                                     (transaction_id, revenue_id, PRICE)])
        if sqlite:
            cursor.execute("COMMIT")
        else:
            dbapi.commit()
        done += 1
    cursor.close()
    return done / (time.perf_counter() - start)


class _Connection:
    """One till's keep-alive HTTP/1.1 connection, on bare asyncio streams: httpx costs a
    client more CPU per request than the server spends deciding the tap, and the two
    share this machine's cores."""

    def __init__(self, base: str, token: str) -> None:
        host, _, port = base.removeprefix("http://").partition(":")
        self._host, self._port = host, int(port)
        self._head = (
            "POST /api/till/taps HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post_tap(self, body: dict[str, object]) -> dict[str, object]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        data = json.dumps(body).encode()
        writer.write(self._head + str(len(data)).encode() + b"\r\n\r\n" + data)
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1")
        status = int(head.split(" ", 2)[1])
        length = next(
            int(line.split(":", 1)[1])
            for line in head.split("\r\n")
            if line.lower().startswith("content-length:")
        )
        answer = await reader.readexactly(length)
        if status != 200:
            raise RuntimeError(f"the server answered {status}: {answer[:200]!r}")
        verdict: dict[str, object] = json.loads(answer)
        return verdict

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()


async def _till(
    base: str,
    token: str,
    uids: list[str],
    interval: float | None,
    deadline: float,
    out: list[float],
    sent: list[str],
    offset: float = 0.0,
) -> None:
    client = _Connection(base, token)
    try:
        n, next_at = 0, time.perf_counter() + offset
        while time.perf_counter() < deadline:
            if interval is not None:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            began = next_at if interval is not None else time.perf_counter()
            tap_id = str(uuid.uuid4())
            body: dict[str, object] = {
                "tap_id": tap_id,
                "read_at": datetime.now(UTC).isoformat(),
                "card": {"uid": uids[n % len(uids)]},
            }
            verdict = await client.post_tap(body)
            out.append((time.perf_counter() - began) * 1000)  # the till shows this verdict
            if verdict["accepted"]:
                sent.append(tap_id)
            if n % 25 == 0:  # resend some, as a till that missed the answer would
                began = time.perf_counter()
                await client.post_tap(body)
                out.append((time.perf_counter() - began) * 1000)
            n += 1
            if interval is not None:
                next_at += interval
    finally:
        client.close()


async def first_tap(base: str, token: str, uid: str) -> tuple[float, list[str]]:
    client, tap_id = _Connection(base, token), str(uuid.uuid4())
    body: dict[str, object] = {
        "tap_id": tap_id, "read_at": datetime.now(UTC).isoformat(), "card": {"uid": uid}
    }
    began = time.perf_counter()
    try:
        verdict = await client.post_tap(body)
    finally:
        client.close()
    return (time.perf_counter() - began) * 1000, [tap_id] if verdict["accepted"] else []


async def load(
    base: str, tokens: list[str], uids: list[list[str]], seconds: float, rate: float | None
) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    accepted: list[str] = []
    interval = len(tokens) / rate if rate else None
    start = time.perf_counter()
    deadline = start + seconds
    share = uids
    # Paced tills are spread evenly over the interval: in step, they would offer bursts
    # of one tap per till rather than a rate (real tills are not synchronised).
    await asyncio.gather(
        *(
            _till(base, t, share[i], interval, deadline, latencies, accepted,
                  offset=(interval or 0.0) * i / len(tokens))
            for i, t in enumerate(tokens)
        )
    )
    return latencies, accepted, time.perf_counter() - start


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))], 2)


def check(url: str, accepted: list[str]) -> tuple[int, int]:
    engine = make_engine(url)
    with Session(engine) as session:
        assert check_integrity(session) == []
        meals = dict(
            session.exec(
                select(LedgerTransaction.client_id, func.count())
                .where(LedgerTransaction.kind == TransactionKind.MEAL)
                .group_by(LedgerTransaction.client_id)
            ).all()
        )
        taps = set(session.exec(select(Tap.tap_id).where(Tap.accepted)).all())
    engine.dispose()
    double = sum(1 for n in meals.values() if n > 1)
    lost = sum(1 for t in accepted if meals.get(f"tap:{t}", 0) != 1 or t not in taps)
    return double, lost


def serve(url: str, data: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MOULIN_DATABASE_URL": url,
        "MOULIN_DATA_DIR": str(data),
        "MOULIN_ENVIRONMENT": "development",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "moulin.asgi:app",
            "--factory",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--tills", type=int, default=None,
                        help="tills sending taps (default 8, or one a school if more)")
    parser.add_argument("--rate", type=float, default=100.0, help="offered taps/s")
    parser.add_argument("--workers", type=int, default=1, help="server processes (postgres)")
    parser.add_argument("--durable", action="store_true",
                        help="postgres: its own cluster with fsync=on, synchronous_commit=on")
    parser.add_argument("--schools", type=int, default=1, help="schools the tills are spread over")
    args = parser.parse_args()
    args.tills = args.tills or max(8, args.schools)
    seconds = 8.0 if args.quick else 30.0
    with tempfile.TemporaryDirectory(prefix="moulin-bench-") as tmp:
        cluster = None
        if args.db == "postgres":
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout
            from tests.pg import Cluster

            cluster = Cluster(durable=args.durable)
            cluster.start()
            url = cluster.url()
        else:
            url = f"sqlite:///{tmp}/bench.db"
        try:
            print(json.dumps(run(url, Path(tmp), args, seconds)))
        finally:
            if cluster is not None:
                cluster.stop()


def run(url: str, data: Path, args: argparse.Namespace, seconds: float) -> dict[str, object]:
    uids, tokens = seed(url, args.tills, args.schools)
    raw = raw_debits(url, seconds / 2)
    port = _free_port()
    server = serve(url, data, port, args.workers if args.db == "postgres" else 1)
    base = f"http://127.0.0.1:{port}"
    try:
        # The first tap after a start is reported alone; then a second of taps from every
        # till, not counted, opens their connections and fills the server's caches.
        first, ok_first = asyncio.run(first_tap(base, tokens[0], uids[0][0]))
        _, ok_warm, _ = asyncio.run(load(base, tokens, uids, WARM_UP_S, args.rate))
        paced, ok_paced, _ = asyncio.run(load(base, tokens, uids, seconds, args.rate))
        flat, ok_flat, took = asyncio.run(load(base, tokens, uids, seconds, None))
    finally:
        server.terminate()
        server.wait(timeout=30)
    double, lost = check(url, ok_first + ok_warm + ok_paced + ok_flat)
    return {
        "db": args.db,
        "tills": args.tills,
        "offered_per_s": args.rate,
        "taps": 1 + len(paced) + len(flat),
        "first_tap_ms": round(first, 2),
        "p50_ms": pct(paced, 50),
        "p99_ms": pct(paced, 99),
        "taps_per_s": round(len(flat) / took, 1),
        "unthrottled_p99_ms": pct(flat, 99),
        "double_charges": double,
        "lost": lost,
        "raw_debits_per_s": round(raw, 1),
        "ratio": round(len(flat) / took / raw, 2),
        "workers": args.workers if args.db == "postgres" else 1,
        "schools": args.schools,
        "durable": args.db == "sqlite" or args.durable,
    }


if __name__ == "__main__":
    main()
