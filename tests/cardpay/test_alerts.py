"""Low-balance e-mails: once per crossing, to each active guardian, through a real SMTP
server on loopback, sent by the outbox away from the till."""

from __future__ import annotations

from datetime import date
from itertools import count

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from cardpay import alerts, outbox
from cardpay.account_models import (
    LowBalanceAlert,
    LunchSettings,
    OutboxEmail,
    SchoolAlertSettings,
)
from cardpay.accounts import pupil_account, school_account
from cardpay.ledger import post
from cardpay.models import AccountKind, TransactionKind
from school.clock import utcnow
from school.db import immediate_session
from school.models import Pupil
from school.people import link_guardian
from tests import factories
from tests.conftest import FakeClock
from tests.factories import SmallSchool
from tests.smtp import Inbox

_ids = count()


def _move(session: Session, pupil: Pupil, cents: int, clock: FakeClock,
          *, alert: bool = True) -> int:
    """A top-up (cents > 0) or a meal (cents < 0) as the till and office post them,
    then the alert hook; the new balance."""
    session.rollback()  # a fresh snapshot: other sessions (the outbox) wrote meanwhile
    account = pupil_account(session=session, pupil=pupil, floor_cents=-10_000)
    other = school_account(session=session, school_id=pupil.school_id,
                           kind=AccountKind.CASH_DRAWER if cents > 0 else AccountKind.MEAL_REVENUE)
    kind = TransactionKind.TOPUP if cents > 0 else TransactionKind.MEAL
    new_balance = account.balance_cents + cents
    if alert and cents < 0:  # the till's way: queued before the meal commits, with it
        alerts.after_debit(session, pupil_id=pupil.id or 0, new_balance_cents=new_balance,
                           clock=clock)
    post(session=session, school_id=pupil.school_id, kind=kind, client_id=f"m{next(_ids)}",
         legs=[(account, cents), (other, -cents)], clock=clock)
    if alert and cents > 0:
        alerts.after_credit(session, pupil_id=pupil.id or 0, new_balance_cents=new_balance,
                            clock=clock)
        session.commit()
    return new_balance


def _config(inbox: Inbox) -> outbox.SmtpConfig:
    return outbox.SmtpConfig(host=inbox.host, port=inbox.port, sender="cantine@example.org",
                             footer="https://moulin.example.org/")


def _drain(engine: Engine, inbox: Inbox, clock: FakeClock) -> int:
    return outbox.drain(lambda: immediate_session(engine), _config(inbox), clock=clock)


@pytest.fixture
def lea(session: Session, small_school: SmallSchool) -> Pupil:
    """Léa, whose guardians are Anne (parent@) and Marc; an ended one and an inactive
    one must never hear about her."""
    lea = small_school.pupils[0]
    marc = factories.user(session, "marc@example.org", name="Marc Martin")
    former = factories.user(session, "former@example.org")
    asleep = factories.user(session, "asleep@example.org")
    asleep.is_active = False
    for user in (marc, asleep):
        link_guardian(session=session, user=user, pupil=lea, starts_on=factories.START)
    former_link = link_guardian(session=session, user=former, pupil=lea,
                                starts_on=factories.START)
    former_link.ends_on = date(2026, 10, 1)
    session.commit()
    return lea


def test_each_guardian_is_emailed_once_per_crossing(
    session: Session, engine: Engine, lea: Pupil, clock: FakeClock, smtp: Inbox
) -> None:
    _move(session, lea, 1000, clock)
    assert _move(session, lea, -350, clock) == 650  # above the default 5.00: quiet
    assert _move(session, lea, -350, clock) == 300  # crosses: an alert
    assert _move(session, lea, -350, clock) == -50  # still below: no second alert
    assert _drain(engine, smtp, clock) == 2
    assert sorted(to for (to,), _ in smtp.received) == ["marc@example.org",
                                                       "parent@example.org"]
    message = smtp.received[0][1]
    assert message["Subject"] == "Solde bas pour Léa Martin : 3,00\u00a0€"
    assert message["From"] == "cantine@example.org"
    body = message.get_content()
    assert "Léa Martin" in body
    assert "3,00\u00a0€" in body
    assert "https://moulin.example.org/" in body
    assert _drain(engine, smtp, clock) == 0  # sent means sent

    _move(session, lea, 1000, clock)  # back above: re-armed
    _move(session, lea, -350, clock)  # 600: quiet
    _move(session, lea, -350, clock)  # 250: the second crossing
    assert _drain(engine, smtp, clock) == 2
    assert len(smtp.received) == 4
    session.rollback()
    crossings = session.exec(select(LowBalanceAlert).order_by(col(LowBalanceAlert.id))).all()
    assert [(a.balance_cents, a.rearmed_at is not None) for a in crossings] == [
        (300, True), (250, False)]


def test_english_speaking_guardians_get_english(
    session: Session, engine: Engine, small_school: SmallSchool, clock: FakeClock, smtp: Inbox
) -> None:
    small_school.other_parent.locale = "en"
    session.commit()
    _move(session, small_school.pupils[1], -120, clock)
    _drain(engine, smtp, clock)
    [(to, message)] = smtp.received
    assert to == ["other@example.org"]
    assert message["Subject"] == "Low balance for Hugo Bernard: \u2212€1.20"


def test_parents_and_schools_choose_the_threshold(
    session: Session, small_school: SmallSchool, clock: FakeClock
) -> None:
    lea, hugo, _jules = small_school.pupils
    session.add(LunchSettings(pupil_id=lea.id, low_balance_alert_cents=2000))  # type: ignore[arg-type]
    session.add(SchoolAlertSettings(school_id=small_school.school.id, low_balance_alert_cents=0))  # type: ignore[arg-type]
    session.commit()
    assert alerts.threshold_for(session, lea) == 2000
    assert alerts.threshold_for(session, hugo) == 0
    for pupil in (lea, hugo):
        _move(session, pupil, 3000, clock)
        _move(session, pupil, -1500, clock)
    session.rollback()
    alerted = session.exec(select(LowBalanceAlert.pupil_id)).all()
    assert alerted == [lea.id]


def test_a_refused_or_replayed_meal_takes_its_alert_with_it(
    session: Session, small_school: SmallSchool, clock: FakeClock
) -> None:
    lea = small_school.pupils[0]
    alerts.after_debit(session, pupil_id=lea.id or 0, new_balance_cents=-350, clock=clock)
    session.rollback()  # the till refused the tap after all
    assert session.exec(select(func.count()).select_from(OutboxEmail)).one() == 0
    assert session.exec(select(func.count()).select_from(LowBalanceAlert)).one() == 0


def test_the_sweep_raises_what_a_crash_left_out_and_nothing_else(
    session: Session, small_school: SmallSchool, clock: FakeClock
) -> None:
    lea, hugo, _jules = small_school.pupils
    _move(session, lea, -350, clock, alert=False)  # the server died before the alert
    pupil_account(session=session, pupil=hugo)  # never topped up: not an alert
    session.commit()
    clock.advance(minutes=5)
    assert alerts.sweep(session, clock=clock) == 1
    assert alerts.sweep(session, clock=clock) == 0
    emails = session.exec(select(OutboxEmail.to_address)).all()
    assert emails == ["parent@example.org"]
    _move(session, lea, 2000, clock, alert=False)
    alerts.sweep(session, clock=clock)
    assert session.exec(select(LowBalanceAlert)).one().rearmed_at == clock.now


def test_a_mail_server_that_is_down_is_retried_later(
    session: Session, engine: Engine, small_school: SmallSchool, clock: FakeClock, smtp: Inbox
) -> None:
    _move(session, small_school.pupils[1], -100, clock)
    down = outbox.SmtpConfig(host="127.0.0.1", port=1, timeout_seconds=2)
    assert outbox.drain(lambda: immediate_session(engine), down, clock=clock) == 0
    session.rollback()
    row = session.exec(select(OutboxEmail)).one()
    assert (row.attempts, row.sent_at) == (1, None)
    assert row.next_attempt_at > clock.now
    assert _drain(engine, smtp, clock) == 0  # not due yet
    clock.advance(minutes=3)
    assert _drain(engine, smtp, clock) == 1
    clock.advance(days=3)
    _move(session, small_school.pupils[1], 1000, clock)
    _move(session, small_school.pupils[1], -1000, clock)
    clock.advance(days=3)  # queued long ago, never sent: stale, so dropped
    assert _drain(engine, smtp, clock) == 0
    session.rollback()
    assert session.exec(select(OutboxEmail).order_by(col(OutboxEmail.id).desc())).first() \
        .abandoned_at == clock.now  # type: ignore[union-attr]


def test_the_worker_sends_in_the_background(
    session: Session, engine: Engine, small_school: SmallSchool, smtp: Inbox
) -> None:
    worker = outbox.OutboxWorker(engine, _config(smtp), interval=30)
    worker.start()
    try:
        hugo = small_school.pupils[1]
        with immediate_session(engine) as writer:  # the worker writes meanwhile
            _move(writer, hugo, -100, FakeClock(utcnow()))
        worker.wake()
        smtp.wait_for(1)
    finally:
        worker.stop()
    assert smtp.received[0][0] == ["other@example.org"]


def test_a_pass_with_nothing_to_do_leaves_the_write_lock_to_the_till(
    session: Session, engine: Engine, small_school: SmallSchool, smtp: Inbox,
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """On SQLite the till's writer holds the one write lock at every tap: the worker's
    pass, every few seconds, must not wait for it (nor make a reader that then writes fail
    with 'database is locked') when nothing is queued and nothing was left out."""
    _move(session, small_school.pupils[1], -100, clock)
    assert _drain(engine, smtp, clock) == 1
    session.rollback()
    worker = outbox.OutboxWorker(engine, _config(smtp), clock=clock)
    with engine.execution_options(moulin_sqlite_begin="BEGIN IMMEDIATE").connect() as till:
        till.exec_driver_sql("SELECT 1")  # the write lock, held for the whole pass
        worker._tick(sweep=True)
        till.rollback()
    assert "outbox worker pass failed" not in caplog.text
    assert len(smtp.received) == 1


def test_the_worker_sends_what_a_crash_left_out(
    session: Session, engine: Engine, small_school: SmallSchool, smtp: Inbox, clock: FakeClock
) -> None:
    _move(session, small_school.pupils[0], -350, clock, alert=False)  # died before the alert
    session.commit()
    outbox.OutboxWorker(engine, _config(smtp), clock=clock)._tick(sweep=True)
    smtp.wait_for(1)
    assert smtp.received[0][0] == ["parent@example.org"]
