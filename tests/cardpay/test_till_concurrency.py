"""Several till processes tapping the same pupils at once: no lost update, no double
charge, nobody left waiting on a lock — on SQLite and on PostgreSQL. With several threads
a process, SQLite's group commit batches the taps; office top-ups from another process
interleave with the batches."""

from __future__ import annotations

import multiprocessing
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from cardpay import cards
from cardpay.accounts import pupil_account, school_account
from cardpay.integrity import check_integrity
from cardpay.ledger import post
from cardpay.models import AccountKind, CanteenSettings, CardKind, Tap, TransactionKind
from cardpay.sun import Keyring
from cardpay.till import TapRequest, Till
from school.db import immediate_session, make_engine
from school.devices import add_device
from school.models import Device, DeviceKind, Pupil
from tests import factories

NOON = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
PROCESSES, TAPS_EACH, PUPILS, PRICE, START, TOP_UP = 4, 30, 3, 100, 10_000, 50


def _till_process(
    url: str, device_id: int, tap_ids: list[str], uids: list[str], threads: int = 1
) -> int:
    engine = make_engine(url)
    with Session(engine) as s:
        device = s.get(Device, device_id)
        assert device is not None
        s.expunge(device)
    till = Till(engine=engine, keyring=Keyring(b"k" * 32), clock=lambda: NOON)

    def tap(tap_id: str, uid: str) -> bool:
        return till.tap(device, TapRequest(tap_id=tap_id, read_at=NOON, uid=uid)).accepted

    with ThreadPoolExecutor(threads) as pool:
        accepted = sum(pool.map(tap, tap_ids, uids))
    till.close()
    engine.dispose()
    return accepted


def _office_process(url: str, school_id: int, uids: list[str], rounds: int) -> int:
    """Top-ups at the office while the tills tap: their own BEGIN IMMEDIATE transactions."""
    engine = make_engine(url)
    done = 0
    for n in range(rounds):
        for uid in uids:
            with immediate_session(engine) as session:
                card = cards.find_by_uid(session, uid)
                assert card is not None
                pupil = session.get_one(Pupil, card.pupil_id)
                cash = school_account(session=session, school_id=school_id,
                                      kind=AccountKind.CASH_DRAWER)
                post(session=session, school_id=school_id, kind=TransactionKind.TOPUP,
                     client_id=f"office-{uid}-{n}",
                     legs=[(pupil_account(session=session, pupil=pupil), TOP_UP),
                           (cash, -TOP_UP)])
                done += 1
    engine.dispose()
    return done


def _school(engine: Engine) -> tuple[int, int, list[str]]:
    with Session(engine) as session:
        school = factories.school(session)
        room = factories.classroom(session, school, "CP")
        session.add(
            CanteenSettings(
                school_id=school.id,
                default_price_cents=PRICE,
                one_meal_per_day=False,
                retap_window_seconds=0,
            )
        )
        device, _ = add_device(session=session, school=school, kind=DeviceKind.TILL, name="t")
        cash = school_account(
            session=session, school_id=school.id or 0, kind=AccountKind.CASH_DRAWER
        )
        uids = []
        for i in range(PUPILS):
            pupil = factories.pupil(session, room, f"P{i}", "Test")
            uid = f"A1B2C3{i:02X}"
            cards.issue_card(session=session, pupil=pupil, uid=uid, kind=CardKind.UID)
            post(
                session=session,
                school_id=school.id or 0,
                kind=TransactionKind.TOPUP,
                client_id=f"topup-{i}",
                legs=[(pupil_account(session=session, pupil=pupil), START), (cash, -START)],
            )
            uids.append(uid)
        assert device.id is not None
        assert school.id is not None
        return school.id, device.id, uids


def test_concurrent_tills_charge_each_tap_once(any_engine: Engine) -> None:
    _concurrent_tills(any_engine, threads=1, office_rounds=0)


def test_batched_taps_from_several_processes_and_office_top_ups(any_engine: Engine) -> None:
    _concurrent_tills(any_engine, threads=6, office_rounds=5)


def _concurrent_tills(any_engine: Engine, *, threads: int, office_rounds: int) -> None:
    school_id, device_id, uids = _school(any_engine)
    rng = random.Random(7)
    shared = [str(uuid.uuid4()) for _ in range(10)]  # sent by every process: a retry storm
    jobs = []
    for _ in range(PROCESSES):
        ids = [str(uuid.uuid4()) for _ in range(TAPS_EACH)] + shared
        jobs.append((ids, [rng.choice(uids) for _ in ids]))
    # The shared taps must name the same card wherever they are sent from.
    for _ids, who in jobs[1:]:
        who[TAPS_EACH:] = jobs[0][1][TAPS_EACH:]
    url = any_engine.url.render_as_string(hide_password=False)
    with multiprocessing.get_context("spawn").Pool(PROCESSES + 1) as pool:
        office = pool.apply_async(_office_process, (url, school_id, uids, office_rounds))
        results = [
            pool.apply_async(_till_process, (url, device_id, ids, who, threads))
            for ids, who in jobs
        ]
        accepted = [r.get(timeout=120) for r in results]
        assert office.get(timeout=120) == office_rounds * len(uids)
    assert sum(accepted) == PROCESSES * len(jobs[0][0])  # retries answered 'accepted' too
    distinct = {t: u for ids, who in jobs for t, u in zip(ids, who, strict=True)}
    with Session(any_engine) as session:
        assert check_integrity(session) == []
        assert session.exec(select(func.count()).select_from(Tap)).one() == len(distinct)
        for uid in uids:
            card = cards.find_by_uid(session, uid)
            assert card is not None
            pupil = session.get(Pupil, card.pupil_id)
            assert pupil is not None
            eaten = sum(1 for u in distinct.values() if u == uid)
            assert PRICE * eaten < START  # every tap is affordable: each must be charged
            assert pupil_account(session=session, pupil=pupil).balance_cents == (
                START - PRICE * eaten + TOP_UP * office_rounds
            )
