"""`moulin people purge`: what is past its retention is anonymised or deleted, nothing
else; the ledger adds up to the same cents and `moulin db check` passes; a dry run changes
nothing and a second run finds nothing more."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from cardpay import leaving
from cardpay.account_models import LunchSettings, Receipt, Tender
from cardpay.integrity import check_integrity
from cardpay.models import Account, Card, CardStatus, LedgerTransaction, Posting, Tap
from cardpay.office import Actor
from moulin import models as _models  # noqa: F401 - every table, for the snapshots
from moulin.purge import PurgeReport, purge
from school import integrity
from school.db import immediate_session
from school.models import AuditEvent, Pupil, User, WebSession
from school.settings import Settings
from tests.conftest import FakeClock
from tests.gdpr_world import HUGO_UID, LEA_UID, THEO_UID, World, build
from webcam.models import CameraView

LEFT_ON = date(2026, 11, 28)
SOON = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # days after leaving
LATER = datetime(2027, 12, 1, 9, 0, tzinfo=UTC)  # more than 365 days after leaving
ALMOST = datetime(2027, 11, 20, 9, 0, tzinfo=UTC)  # not yet


@pytest.fixture
def world(engine: Engine, session: Session, clock: FakeClock, settings: Settings) -> World:
    w = build(engine, session, clock)
    photos = settings.data_dir / "photos"
    photos.mkdir(parents=True)
    (photos / "lea.jpg").write_bytes(b"\xff\xd8 a photo")
    session.rollback()
    lea = session.get(Pupil, w.lea.id)
    assert lea is not None
    lea.photo_path = "photos/lea.jpg"
    session.add(lea)
    session.commit()
    actor = Actor(user_id=w.s.office.id or 0)
    for pupil in (w.lea, w.theo):
        with immediate_session(engine) as ledger:
            leaving.close_account(
                session=ledger, pupil=ledger.get(Pupil, pupil.id), left_on=LEFT_ON,  # type: ignore[arg-type]
                settlement=leaving.Settlement(leaving.Settle.REFUND, reason="moving away",
                                              tender=Tender.CASH),
                client_id=f"leave:{pupil.id}", actor=actor, today=date(2026, 11, 24))
    return w


def _snapshot(engine: Engine, *, without: tuple[str, ...] = ()) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        return {table.name: sorted(map(repr, conn.execute(table.select()).all()))
                for table in SQLModel.metadata.sorted_tables if table.name not in without}


def _books(engine: Engine) -> tuple[list[Any], int, int, int]:
    with Session(engine) as read:
        balances = list(read.exec(select(Account.id, Account.balance_cents)
                                  .order_by(col(Account.id))).all())
        total, postings = read.exec(select(func.sum(Posting.amount_cents),
                                           func.count(col(Posting.id)))).one()
        txns = read.exec(select(func.count(col(LedgerTransaction.id)))).one()
    return balances, int(total), int(postings), int(txns)


def _checked(engine: Engine) -> list[str]:
    with Session(engine) as read:
        return [*integrity.check(read), *check_integrity(read)]


def test_only_what_is_past_retention_goes(
    engine: Engine, world: World, settings: Settings
) -> None:
    books = _books(engine)
    soon = purge(engine, settings, now=SOON)
    # Only the viewing log's oldest rows are past their 180 days so far.
    assert soon.total == soon.camera_views == 2
    assert purge(engine, settings, now=ALMOST).pupils == 0
    with Session(engine) as read:
        lea = read.get(Pupil, world.lea.id)
        assert lea is not None
        assert (lea.first_name, lea.anonymised_at) == ("Léa", None)
    assert _books(engine) == books


def test_a_dry_run_counts_and_changes_nothing(
    engine: Engine, world: World, settings: Settings
) -> None:
    before = _snapshot(engine)
    dry = purge(engine, settings, now=LATER, dry_run=True)
    assert _snapshot(engine) == before
    assert (settings.data_dir / "photos" / "lea.jpg").exists()
    real = purge(engine, settings, now=LATER)
    assert dry == real
    assert (real.pupils, real.guardians, real.cardpay.cards, real.photos) == (2, 1, 2, 1)


def test_pupils_and_former_guardians_are_anonymised_and_the_books_still_add_up(
    engine: Engine, world: World, settings: Settings
) -> None:
    books = _books(engine)
    report = purge(engine, settings, now=LATER)
    assert report.pupils == 2  # Léa and Théo left; Jules and Hugo are still at school
    assert report.cardpay.taps == 2
    assert report.cardpay.limits == 1  # Léa's daily limit
    assert report.cardpay.receipts == 1  # the cheque number of Léa's top-up
    assert _books(engine) == books
    assert _checked(engine) == []
    with Session(engine) as read:
        lea = read.get(Pupil, world.lea.id)
        assert lea is not None
        assert (lea.first_name, lea.last_name, lea.full_name) == (
            "Pupil", f"#{lea.id}", f"Pupil #{lea.id}")
        assert (lea.allergies, lea.diet_notes, lea.photo_path, lea.birth_date) == (
            "", "", None, None)
        assert lea.external_ref == f"erased-{lea.id}"
        assert lea.anonymised_at == LATER
        assert lea.classroom_id == world.s.rooms[0].id  # reports by class still add up
        card = read.exec(select(Card).where(Card.pupil_id == lea.id)).one()
        assert card.uid.startswith("~")
        assert len(card.uid) == 20
        assert card.status is CardStatus.RETIRED
        tap = read.exec(select(Tap).where(Tap.pupil_id == lea.id)).one()
        assert (tap.card_uid, tap.price_cents, tap.accepted) == (card.uid, 350, True)
        assert read.get(LunchSettings, lea.id) is None
        assert read.exec(select(Receipt.reference).where(Receipt.pupil_id == lea.id)).all() \
            == [""]
        hugo = read.get(Pupil, world.hugo.id)
        assert hugo is not None
        assert (hugo.full_name, hugo.anonymised_at) == ("Hugo Bernard", None)
        marc = read.get(User, world.marc.id)
        assert marc is not None
        assert (marc.email, marc.full_name) == (f"erased-{marc.id}@invalid", f"Guardian #{marc.id}")
        assert (marc.password_hash, marc.is_active) == (None, False)
        anne = read.get(User, world.s.parent.id)  # Jules is still at school
        assert anne is not None
        assert (anne.email, anne.is_active) == ("parent@example.org", True)
        assert read.exec(select(func.count(col(CameraView.id)))).one() == 0  # all > 180 days
        assert read.exec(select(func.count(col(WebSession.id)))).one() == 0  # long expired
        event = read.exec(select(AuditEvent).where(AuditEvent.action == "people.purge")).one()
    assert event.detail == report.counts()
    assert "@" not in json.dumps(event.detail)
    assert "Martin" not in json.dumps(event.detail)
    assert not (settings.data_dir / "photos" / "lea.jpg").exists()
    dump = json.dumps(_snapshot(engine), ensure_ascii=False)
    for gone in (LEA_UID, THEO_UID, "Théo", "kiwi", "arachide", "marc@example.org",
                 "chèque 4411"):
        assert gone not in dump, gone
    assert HUGO_UID in dump  # Hugo is still at school


def test_a_second_run_finds_nothing_more(
    engine: Engine, world: World, settings: Settings
) -> None:
    purge(engine, settings, now=LATER)
    after = _snapshot(engine, without=("audit_event",))
    again = purge(engine, settings, now=LATER)
    assert again == PurgeReport()
    assert _snapshot(engine, without=("audit_event",)) == after
    assert _checked(engine) == []


def test_photos_outside_the_data_folder_are_never_deleted(
    engine: Engine, world: World, settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(b"not ours")
    with Session(engine) as write:
        lea = write.get(Pupil, world.lea.id)
        assert lea is not None
        lea.photo_path = "../elsewhere.jpg"
        write.add(lea)
        write.commit()
    assert purge(engine, settings, now=LATER).photos == 0
    assert outside.exists()


@pytest.mark.postgres
def test_the_purge_on_postgresql(pg_url: str, settings: Settings) -> None:
    from school.db import make_engine
    from school.migrate import upgrade

    pg = make_engine(pg_url)
    try:
        upgrade(pg)
        with Session(pg, expire_on_commit=False) as session:
            w = build(pg, session, FakeClock())
        with immediate_session(pg) as ledger:
            leaving.close_account(
                session=ledger, pupil=ledger.get(Pupil, w.lea.id), left_on=LEFT_ON,  # type: ignore[arg-type]
                settlement=leaving.Settlement(leaving.Settle.TRANSFER,
                                              sibling=ledger.get(Pupil, w.jules.id)),
                client_id="leave", actor=Actor(user_id=w.s.office.id or 0),
                today=date(2026, 11, 24))
        books = _books(pg)
        report = purge(pg, settings, now=LATER)
        assert (report.pupils, report.cardpay.cards, report.guardians) == (1, 1, 0)
        assert _books(pg) == books
        assert _checked(pg) == []
        assert purge(pg, settings, now=LATER).total == 0
    finally:
        pg.dispose()
