"""Low-balance alerts: each active guardian is e-mailed once when a meal takes their
child's balance below the threshold, and not again until the balance has been back above.

The till calls `after_debit` with the balance its meal leaves, before `ledger.post`
commits: the alert and its outbox e-mails then commit with the meal, or vanish with it
(a refused or replayed tap). Called after the commit instead, follow it with
`session.commit()`; `sweep`, run by the outbox worker, raises any alert a crash in between
left out. Credits call `after_credit`, which re-arms. E-mails are only queued here
(`OutboxEmail`); `cardpay.outbox` sends them, away from any till's request.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from cardpay.account_models import (
    DEFAULT_LOW_BALANCE_ALERT_CENTS,
    LowBalanceAlert,
    LunchSettings,
    OutboxEmail,
    SchoolAlertSettings,
)
from cardpay.models import Account, LedgerTransaction, Posting
from cardpay.money import format_cents
from school.clock import Clock, utcnow
from school.models import Pupil, School, User
from school.people import guardians_of

logger = logging.getLogger(__name__)

# How far back `sweep` looks for a debit that should have raised an alert: long enough to
# cover a restart, short enough never to e-mail about an account that was simply never
# topped up.
SWEEP_LOOKBACK = timedelta(hours=6)

MESSAGES = {
    "fr": ("Solde bas pour {name} : {balance}",
           "Bonjour,\n\nLe solde du compte cantine de {name} est de {balance}, sous le seuil "
           "de {threshold}.\nPensez à le recharger (en ligne ou au secrétariat).\n\n"
           "Vous ne recevrez pas d'autre alerte avant que le solde soit repassé au-dessus "
           "de ce seuil.\n\n— {school}\n"),
    "en": ("Low balance for {name}: {balance}",
           "Hello,\n\nThe lunch account of {name} is at {balance}, below the alert level of "
           "{threshold}.\nPlease top it up (online or at the school office).\n\n"
           "You will not get another alert until the balance has been back above this "
           "level.\n\n— {school}\n"),
}


def threshold_for(session: Session, pupil: Pupil) -> int:
    """The parents' threshold for this pupil, or the school's, or the default."""
    own = session.get(LunchSettings, pupil.id)
    if own is not None and own.low_balance_alert_cents is not None:
        return own.low_balance_alert_cents
    school = session.get(SchoolAlertSettings, pupil.school_id)
    return school.low_balance_alert_cents if school else DEFAULT_LOW_BALANCE_ALERT_CENTS


def _open_alert(session: Session, pupil_id: int) -> LowBalanceAlert | None:
    return session.exec(select(LowBalanceAlert).where(
        LowBalanceAlert.pupil_id == pupil_id, col(LowBalanceAlert.rearmed_at).is_(None))).first()


def after_debit(session: Session, *, pupil_id: int, new_balance_cents: int,
                clock: Clock = utcnow) -> LowBalanceAlert | None:
    """Queue the guardians' e-mails if this balance is below the pupil's threshold and
    no alert is open yet; return the new alert. Adds to the session, never commits."""
    pupil = session.get(Pupil, pupil_id)
    if pupil is None:
        return None
    threshold = threshold_for(session, pupil)
    if new_balance_cents >= threshold:
        _rearm(session, pupil_id, clock)
        return None
    if _open_alert(session, pupil_id) is not None:
        return None
    return _raise(session, pupil, new_balance_cents, threshold, clock())


def after_credit(session: Session, *, pupil_id: int, new_balance_cents: int,
                 clock: Clock = utcnow) -> None:
    """Re-arm the pupil's alert once the balance is back at or above the threshold.
    Adds to the session, never commits."""
    pupil = session.get(Pupil, pupil_id)
    if pupil is not None and new_balance_cents >= threshold_for(session, pupil):
        _rearm(session, pupil_id, clock)


def _rearm(session: Session, pupil_id: int, clock: Clock) -> None:
    alert = _open_alert(session, pupil_id)
    if alert is not None:
        alert.rearmed_at = clock()
        session.add(alert)


def _raise(session: Session, pupil: Pupil, balance: int, threshold: int,
           now: datetime) -> LowBalanceAlert | None:
    alert = LowBalanceAlert(school_id=pupil.school_id, pupil_id=pupil.id,  # type: ignore[arg-type]
                            balance_cents=balance, threshold_cents=threshold, created_at=now)
    try:
        with session.begin_nested():  # a savepoint: losing a race must not fail the meal
            session.add(alert)
    except IntegrityError:
        logger.info("low-balance alert for pupil %s already raised elsewhere", pupil.id)
        return None
    school = session.get(School, pupil.school_id)
    assert school is not None
    today = now.astimezone(ZoneInfo(school.timezone)).date()
    for guardian in guardians_of(session, pupil.id, today):  # type: ignore[arg-type]
        if guardian.is_active:
            session.add(_email(alert, pupil, school, guardian, now))
    logger.info("low-balance alert %s for pupil %s queued", alert.id, pupil.id)
    return alert


def _email(alert: LowBalanceAlert, pupil: Pupil, school: School, to: User,
           now: datetime) -> OutboxEmail:
    lang = to.locale if to.locale in MESSAGES else school.locale
    subject, body = MESSAGES.get(lang, MESSAGES["fr"])
    values = {
        "name": pupil.full_name, "school": school.name,
        "balance": format_cents(alert.balance_cents, lang, school.currency),
        "threshold": format_cents(alert.threshold_cents, lang, school.currency),
    }
    return OutboxEmail(school_id=school.id, alert_id=alert.id, user_id=to.id,
                       to_address=to.email, subject=subject.format(**values)[:200],
                       body=body.format(**values), created_at=now, next_attempt_at=now)


def _left_out(session: Session, now: datetime
              ) -> tuple[list[LowBalanceAlert], list[tuple[Pupil, int, int]]]:
    """What a sweep would do: the open alerts whose balance has recovered, and the pupils
    (with balance and threshold) debited below their threshold lately with no open alert."""
    recovered = [
        alert for alert, balance, pupil in session.exec(
            select(LowBalanceAlert, Account.balance_cents, Pupil)
            .join(Account, col(Account.pupil_id) == col(LowBalanceAlert.pupil_id))
            .join(Pupil, col(Pupil.id) == col(LowBalanceAlert.pupil_id))
            .where(col(LowBalanceAlert.rearmed_at).is_(None))
        ).all()
        if balance >= threshold_for(session, pupil)
    ]
    recent = (select(Posting.account_id)
              .join(LedgerTransaction, col(LedgerTransaction.id) == col(Posting.transaction_id))
              .where(col(Posting.amount_cents) < 0,
                     col(LedgerTransaction.created_at) >= now - SWEEP_LOOKBACK))
    low = []
    for account, pupil in session.exec(
        select(Account, Pupil).join(Pupil, col(Pupil.id) == col(Account.pupil_id))
        .where(col(Account.id).in_(recent.scalar_subquery()))
    ).all():
        threshold = threshold_for(session, pupil)
        if account.balance_cents < threshold and _open_alert(session, pupil.id or 0) is None:
            low.append((pupil, account.balance_cents, threshold))
    return recovered, low


def sweep_due(session: Session, *, clock: Clock = utcnow) -> bool:
    """Whether `sweep` has anything to do, found with reads alone: the outbox worker asks
    this first so that its pass every minute takes no write lock from the till (on SQLite,
    one writer at a time) when, as nearly always, there is nothing to mend."""
    recovered, low = _left_out(session, clock())
    session.rollback()
    return bool(recovered or low)


def sweep(session: Session, *, clock: Clock = utcnow) -> int:
    """Raise the alerts a crash left out (a recent debit below the threshold with no open
    alert) and re-arm those whose balance has recovered; commit; return alerts raised."""
    now = clock()
    recovered, low = _left_out(session, now)
    for alert in recovered:
        alert.rearmed_at = now
        session.add(alert)
    raised = sum(_raise(session, pupil, balance, threshold, now) is not None
                 for pupil, balance, threshold in low)
    session.commit()
    if raised:
        logger.warning("sweep raised %s low-balance alert(s) a crash had left out", raised)
    return raised
