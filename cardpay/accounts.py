"""Finding and opening ledger accounts: a pupil's lunch account, a till's drawer, the rest."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from cardpay.errors import AccountClosedError, LedgerError
from cardpay.models import Account, AccountKind
from school.models import Device, Pupil

# Kinds of which a school has exactly one account (plus the office's cash drawer).
SCHOOL_KINDS = frozenset({AccountKind.ONLINE_CLEARING, AccountKind.MEAL_REVENUE,
                          AccountKind.REFUNDS, AccountKind.ADJUSTMENTS,
                          AccountKind.CASH_DRAWER, AccountKind.CHEQUES, AccountKind.BANK})


def pupil_account(*, session: Session, pupil: Pupil, floor_cents: int | None = 0) -> Account:
    """The pupil's lunch account, opened with `floor_cents` if it does not exist yet.

    Flushes, does not commit: opening an account changes no money, so it may ride along
    with whatever the caller commits next (its first top-up, say).
    """
    found = session.exec(select(Account).where(Account.pupil_id == pupil.id)).first()
    if found is not None:
        return found
    return _open(session, select(Account).where(Account.pupil_id == pupil.id),
                 school_id=pupil.school_id, kind=AccountKind.PUPIL_LUNCH,
                 pupil_id=pupil.id, floor_cents=floor_cents)


def check_open(session: Session, pupil: Pupil) -> None:
    """Refuse to credit the account of a pupil who has left (reads, never opens it)."""
    closed_at = session.exec(select(Account.closed_at)
                             .where(Account.pupil_id == pupil.id)).first()
    if closed_at is not None:
        raise AccountClosedError()


def till_drawer(*, session: Session, device: Device) -> Account:
    """The cash drawer of one till."""
    query = select(Account).where(Account.device_id == device.id)
    found = session.exec(query).first()
    if found is not None:
        return found
    return _open(session, query, school_id=device.school_id, kind=AccountKind.CASH_DRAWER,
                 device_id=device.id)


def school_account(*, session: Session, school_id: int, kind: AccountKind) -> Account:
    """The school's one account of this kind; for CASH_DRAWER, the office's drawer."""
    if kind not in SCHOOL_KINDS:
        raise LedgerError(f"a school has no single {kind.value} account")
    query = select(Account).where(
        Account.school_id == school_id, Account.kind == kind,
        col(Account.pupil_id).is_(None), col(Account.device_id).is_(None),
    )
    found = session.exec(query).first()
    if found is not None:
        return found
    return _open(session, query, school_id=school_id, kind=kind)


def _open(session: Session, query: Any, **fields: Any) -> Account:
    # Two requests may open the same account at once: the partial unique indexes let one
    # win, and the other takes the winner's row.
    try:
        with session.begin_nested():
            account = Account(**fields)
            session.add(account)
    except IntegrityError:
        found: Account | None = session.exec(query).first()
        if found is None:
            raise
        return found
    return account
