"""Group commit on SQLite: many writes to one commit, each write all or nothing, and a
caller told only what is on disk."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from sqlalchemy import Connection, event, func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from cardpay import cards
from cardpay.accounts import pupil_account, school_account
from cardpay.errors import TapConflictError
from cardpay.group_commit import GroupCommitter
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
from cardpay.sun import Keyring
from cardpay.tap_rows import TapRecord
from cardpay.till import TapRequest, Till
from school.db import make_engine
from school.devices import add_device
from school.models import AuditEvent, Device, DeviceKind
from tests import factories

NOON = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
_AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]


def _note(action: str) -> Callable[[Connection], str]:
    def work(conn: Connection) -> str:
        conn.execute(insert(_AUDIT).values(action=action, at=NOON, target_type="", target_id="",
                                           detail={}))
        return action

    return work


def _failing(action: str) -> Callable[[Connection], str]:
    def work(conn: Connection) -> str:
        _note(action)(conn)
        raise RuntimeError(f"{action} fails after writing")

    return work


def _unbalanced(conn: Connection) -> str:
    # A ledger transaction with no postings: the database refuses it at COMMIT only.
    conn.execute(insert(LedgerTransaction.__table__).values(  # type: ignore[attr-defined]
        school_id=1, kind=TransactionKind.MEAL, client_id="unbalanced", created_at=NOON,
        occurred_at=NOON, memo=""))
    return "unbalanced"


def _actions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(_AUDIT.c.action)).scalars())


def _commits(engine: Engine) -> list[int]:
    count = [0]
    event.listen(engine, "commit", lambda _conn: count.__setitem__(0, count[0] + 1))
    return count


def _in_one_batch(writer: GroupCommitter, works: list[Callable[[Connection], str]]) -> list[
        object]:
    """Hold the writer in a batch of its own while `works` queue, so that they are all
    taken up together; return each one's result or exception."""
    held, release = threading.Event(), threading.Event()

    def hold(_conn: Connection) -> str:
        held.set()
        release.wait(10)
        return "held"

    with ThreadPoolExecutor(len(works) + 1) as pool:
        first = pool.submit(writer.submit, hold)
        assert held.wait(10)
        futures = [writer.enqueue(work) for work in works]
        release.set()
        assert first.result(10) == "held"
        return [f.exception(10) or f.result(10) for f in futures]


def test_a_batch_is_one_commit_and_a_failing_write_is_undone_alone(engine: Engine) -> None:
    writer = GroupCommitter(engine)
    commits = _commits(engine)
    try:
        outcomes = _in_one_batch(writer, [_note("a"), _failing("b"), _note("c"), _note("d")])
    finally:
        writer.close()
    assert outcomes[0] == "a"
    assert outcomes[2:] == ["c", "d"]
    assert isinstance(outcomes[1], RuntimeError)
    assert commits[0] == 2  # the holding batch, then the four writes together
    assert _actions(engine) == {"a", "c", "d"}


def test_a_batch_whose_commit_fails_is_retried_write_by_write(engine: Engine) -> None:
    with Session(engine) as session:
        factories.school(session)
        session.commit()
    writer = GroupCommitter(engine)
    try:
        outcomes = _in_one_batch(writer, [_note("a"), _unbalanced, _note("c")])
    finally:
        writer.close()
    assert outcomes[0] == "a"
    assert outcomes[2] == "c"
    assert isinstance(outcomes[1], IntegrityError)  # FOREIGN KEY constraint failed
    assert _actions(engine) == {"a", "c"}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(LedgerTransaction)).scalar() == 0


def test_the_wal_stays_small_through_a_rush_with_readers(tmp_path: Path) -> None:
    """Writes without a pause and readers all along, as at lunch: the log is copied into
    the database and started again from the beginning, rather than growing for as long
    as the taps come."""
    engine = make_engine(f"sqlite:///{tmp_path / 'rush.db'}")
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE t (x)"))
        conn.commit()
    wal = tmp_path / "rush.db-wal"
    writer = GroupCommitter(engine, checkpoint_every=0.05)
    stop = threading.Event()

    def read() -> None:  # as the till API looks up each tap's device
        while not stop.wait(0.001):
            with engine.connect() as conn:
                conn.execute(text("SELECT count(*) FROM t")).scalar()

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    row = "x" * 2000  # a page of its own for each write
    try:
        for _ in range(3000):
            writer.submit(lambda c: c.execute(text("INSERT INTO t VALUES (:x)"), {"x": row}))
        largest = wal.stat().st_size
    finally:
        stop.set()
        for reader in readers:
            reader.join()
        writer.close()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 3000
    engine.dispose()
    # A log never started again holds at least a 4 kB frame per commit: 12 MB here (the
    # checkpoint thread of old: 16-19 MB). Started again, it stays at a few MB: 2-3 MB on
    # a quiet machine, 6 MB in a full test run, where readers get the CPU less often.
    assert largest < 9 * 1024 * 1024, f"the WAL grew to {largest:,} bytes"


def test_a_tap_record_has_every_column_of_the_tap_table() -> None:
    # Taps are inserted from TapRecord with Core: a column it lacked would be left NULL.
    columns = {c.name for c in Tap.__table__.columns} - {"id"}  # type: ignore[attr-defined]
    assert {f.name for f in dataclasses.fields(TapRecord)} == columns


# -- the till on top of it -------------------------------------------------------------


def _canteen(engine: Engine, pupils: int = 4) -> tuple[int, int, list[str]]:
    """A school serving every tap at 1.00 at any hour, pupils with 100.00 each, two tills."""
    with Session(engine) as session:
        school = factories.school(session)
        room = factories.classroom(session, school, "CP")
        session.add(CanteenSettings(school_id=school.id, default_price_cents=100,
                                    one_meal_per_day=False, retap_window_seconds=0,
                                    open_weekdays="0123456", service_start=time(0, 0),
                                    service_end=time(23, 59, 59)))
        till, _ = add_device(session=session, school=school, kind=DeviceKind.TILL, name="t1")
        other, _ = add_device(session=session, school=school, kind=DeviceKind.TILL, name="t2")
        cash = school_account(session=session, school_id=school.id or 0,
                              kind=AccountKind.CASH_DRAWER)
        uids = []
        for i in range(pupils):
            pupil = factories.pupil(session, room, f"P{i}", "Test")
            uid = f"C0FFEE{i:02X}"
            cards.issue_card(session=session, pupil=pupil, uid=uid, kind=CardKind.UID)
            post(session=session, school_id=school.id or 0, kind=TransactionKind.TOPUP,
                 client_id=f"topup-{i}", legs=[(pupil_account(session=session, pupil=pupil),
                                                10_000), (cash, -10_000)])
            uids.append(uid)
        assert till.id is not None
        assert other.id is not None
        return till.id, other.id, uids


def _device(engine: Engine, device_id: int) -> Device:
    with Session(engine, expire_on_commit=False) as session:
        device = session.get_one(Device, device_id)
        session.expunge(device)
        return device


def _meals(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(
            select(LedgerTransaction.client_id, func.count())  # type: ignore[call-overload]
            .where(LedgerTransaction.kind == TransactionKind.MEAL)
            .group_by(LedgerTransaction.client_id)
        ).all())


def test_taps_batched_together_are_decided_each_alone(engine: Engine) -> None:
    till_id, other_id, uids = _canteen(engine)
    till = Till(engine=engine, keyring=Keyring(b"k" * 32), clock=lambda: NOON)
    device, other = _device(engine, till_id), _device(engine, other_id)
    till.tap(other, TapRequest(tap_id="taken", read_at=NOON, uid=uids[0]))
    assert till.writer is not None
    held, release = threading.Event(), threading.Event()
    commits = _commits(engine)
    with ThreadPoolExecutor(8) as pool:
        holder = pool.submit(till.writer.submit,
                             lambda _c: (held.set(), release.wait(10)))
        assert held.wait(10)
        ids = [str(uuid.uuid4()) for _ in range(5)]
        taps = [pool.submit(till.tap, device, TapRequest(tap_id=t, read_at=NOON, uid=uids[i % 4]))
                for i, t in enumerate(ids)]
        conflict = pool.submit(till.tap, device, TapRequest(tap_id="taken", read_at=NOON,
                                                            uid=uids[1]))
        while till.writer._queue.qsize() < 6:
            threading.Event().wait(0.01)
        release.set()
        holder.result(10)
        verdicts = [t.result(10) for t in taps]
        with pytest.raises(TapConflictError):
            conflict.result(10)
    till.close()
    assert all(v.accepted for v in verdicts)
    assert commits[0] == 2  # the holder's batch, then the six taps in one
    meals = _meals(engine)
    assert all(meals[f"tap:{t}"] == 1 for t in ids)
    assert len(meals) == 6
    with Session(engine) as session:
        assert check_integrity(session) == []


# A process that taps as fast as it can from several threads, saying on stdout what it
# sends and what it was told; killed with SIGKILL by the test below.
_TAPPER = """
import sys, threading, uuid
from datetime import UTC, datetime, time
from sqlmodel import Session
from cardpay.sun import Keyring
from cardpay.till import TapRequest, Till
from school.db import make_engine
from school.models import Device
url, device_id, uids = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
engine = make_engine(url)
with Session(engine, expire_on_commit=False) as s:
    device = s.get(Device, device_id); s.expunge(device)
till = Till(engine=engine, keyring=Keyring(b"k" * 32))
out = threading.Lock()
def say(line):
    with out:
        sys.stdout.write(line + "\\n"); sys.stdout.flush()
def tapper(n):
    while True:
        tap_id = str(uuid.uuid4())
        uid = uids[n % len(uids)]
        say(f"sent {tap_id} {uid}")
        till.tap(device, TapRequest(tap_id=tap_id, read_at=datetime.now(UTC), uid=uid))
        say(f"ack {tap_id}")
for n in range(8):
    threading.Thread(target=tapper, args=(n,), daemon=True).start()
threading.Event().wait()
"""


def test_a_killed_server_loses_only_taps_it_had_not_answered(any_engine: Engine) -> None:
    """On SQLite (group commit) and on PostgreSQL (a transaction a tap)."""
    engine = any_engine
    till_id, _, uids = _canteen(engine)
    url = engine.url.render_as_string(hide_password=False)
    sent: dict[str, str] = {}
    acked: set[str] = set()
    for _round in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", _TAPPER, url, str(till_id), ",".join(uids)],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert child.stdout is not None

        def note(line: str) -> None:
            word, tap_id, *uid = line.split()
            if word == "sent":
                sent[tap_id] = uid[0]
            else:
                acked.add(tap_id)

        answered = 0
        for line in child.stdout:
            note(line)
            answered += line.startswith("ack")
            if answered >= 40:
                break
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        # What it wrote before it died, still in the pipe: on a loaded machine it can have
        # sent (and been charged for) many more taps between the 40th answer and the kill.
        for line in child.stdout:
            note(line)
        child.stdout.close()
    in_flight = set(sent) - acked
    assert in_flight  # the kills did land between a tap's sending and its answer
    meals = _meals(engine)
    assert all(meals.get(f"tap:{t}") == 1 for t in acked), "an answered tap was lost"
    # The till sends again every tap it got no answer for: each is charged once in all.
    till = Till(engine=engine, keyring=Keyring(b"k" * 32))
    device = _device(engine, till_id)
    for tap_id, uid in sent.items():
        till.tap(device, TapRequest(tap_id=tap_id, read_at=datetime.now(UTC), uid=uid))
    till.close()
    meals = _meals(engine)
    assert sorted(meals) == sorted(f"tap:{t}" for t in sent)
    assert set(meals.values()) == {1}
    with Session(engine) as session:
        assert check_integrity(session) == []


def test_a_closed_writer_leaves_no_thread_and_starts_again_when_needed(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE t (x)"))
        conn.commit()
    writer = GroupCommitter(engine)
    before = set(threading.enumerate())
    writer.submit(lambda c: c.execute(text("INSERT INTO t VALUES (1)")).rowcount)
    writer.close()
    assert set(threading.enumerate()) <= before
    writer.stop()  # what a till's finalizer does: the next submit is refused
    with pytest.raises(RuntimeError):
        writer.submit(lambda c: None)
    writer.close()
    assert writer.submit(lambda c: c.execute(text("INSERT INTO t VALUES (2)")).rowcount) == 1
    writer.close()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 2
    engine.dispose()
