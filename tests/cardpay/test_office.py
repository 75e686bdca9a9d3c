"""Office money: numbered receipts without gaps, forms that post once, refunds and
corrections with a reason, reversals, each in the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from cardpay import office
from cardpay.account_models import Receipt, Tender
from cardpay.accounts import pupil_account, school_account
from cardpay.errors import (
    IdempotencyConflictError,
    InvalidAmountError,
    NotReversibleError,
    ReasonRequiredError,
)
from cardpay.ledger import balance_of, check_integrity, post
from cardpay.models import AccountKind, LedgerTransaction, TransactionKind
from school.db import immediate_session
from school.models import AuditEvent, Pupil
from tests import factories
from tests.cardpay.test_ledger import _in_threads

ACTOR = office.Actor(user_id=1)


@pytest.fixture
def pupil(session: Session) -> Pupil:
    school = factories.school(session)
    room = factories.classroom(session, school, "CP")
    staff = factories.user(session, "office@example.org")
    session.flush()
    assert staff.id == ACTOR.user_id
    record = factories.pupil(session, room, "Léa", "Martin")
    session.commit()
    return record


def _topup(session: Session, pupil: Pupil, cents: int, nonce: str,
           tender: Tender = Tender.CASH) -> Receipt:
    return office.office_topup(session=session, pupil=pupil, amount_cents=cents, tender=tender,
                               client_id=f"form:{nonce}", actor=ACTOR)


def _balance(session: Session, pupil: Pupil) -> int:
    session.rollback()
    return pupil_account(session=session, pupil=pupil).balance_cents


def _actions(session: Session) -> list[str]:
    session.rollback()
    return [e.action for e in session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))]


def test_topups_get_consecutive_receipts_and_credit_the_right_account(
    session: Session, pupil: Pupil
) -> None:
    cash = _topup(session, pupil, 2000, "a")
    cheque = _topup(session, pupil, 3500, "b", Tender.CHEQUE)
    transfer = _topup(session, pupil, 1000, "c", Tender.TRANSFER)
    assert [cash.number, cheque.number, transfer.number] == [1, 2, 3]
    assert _balance(session, pupil) == 6500
    for kind, held in ((AccountKind.CASH_DRAWER, 2000), (AccountKind.CHEQUES, 3500),
                       (AccountKind.BANK, 1000)):
        account = school_account(session=session, school_id=pupil.school_id, kind=kind)
        assert balance_of(session, account) * kind.display_sign == held
    assert _actions(session) == ["money.topup"] * 3
    assert check_integrity(session) == []


def test_a_form_posted_twice_posts_once_and_shows_the_same_receipt(
    session: Session, pupil: Pupil
) -> None:
    first = _topup(session, pupil, 2000, "same")
    again = _topup(session, pupil, 2000, "same")
    assert (again.id, again.number) == (first.id, first.number)
    assert _balance(session, pupil) == 2000
    assert session.exec(select(func.count()).select_from(Receipt)).one() == 1
    with pytest.raises(IdempotencyConflictError):
        _topup(session, pupil, 5000, "same")
    assert _topup(session, pupil, 100, "next").number == 2


def test_a_topup_that_does_not_commit_gives_its_number_back(
    session: Session, pupil: Pupil
) -> None:
    _topup(session, pupil, 1000, "a")
    # Someone else's transaction already holds this client id: the top-up is refused
    # after it took a number, and the number goes back with it.
    account = pupil_account(session=session, pupil=pupil)
    adjust = school_account(session=session, school_id=pupil.school_id,
                            kind=AccountKind.ADJUSTMENTS)
    post(session=session, school_id=pupil.school_id, kind=TransactionKind.CORRECTION,
         client_id="form:taken", legs=[(account, 5), (adjust, -5)])
    with pytest.raises(IdempotencyConflictError):
        _topup(session, pupil, 1000, "taken")
    assert _topup(session, pupil, 1000, "b").number == 2


@pytest.mark.parametrize("cents", [0, -100, office.OFFICE_MAX_TOPUP_CENTS + 1])
def test_absurd_topups_are_refused(session: Session, pupil: Pupil, cents: int) -> None:
    with pytest.raises(InvalidAmountError):
        _topup(session, pupil, cents, "x")
    assert _balance(session, pupil) == 0


def test_concurrent_topups_number_receipts_without_gaps(any_engine: Engine) -> None:
    with Session(any_engine) as session:
        school = factories.school(session)
        pupils = [factories.pupil(session, factories.classroom(session, school, "CP"),
                                  "Léa", "Martin")]
        factories.user(session, "office@example.org")
        session.commit()
        pupil_id = pupils[0].id

    def clerk(i: int) -> None:
        for j in range(5):
            with immediate_session(any_engine) as session:
                pupil = session.get(Pupil, pupil_id)
                assert pupil is not None
                _topup(session, pupil, 100 + i, f"{i}-{j}")
                if j == 2:  # a double-click: the same form again
                    _topup(session, pupil, 100 + i, f"{i}-{j}")

    assert _in_threads(6, clerk) == []
    with Session(any_engine) as session:
        numbers = sorted(session.exec(select(Receipt.number)).all())
        assert numbers == list(range(1, 31))
        pupil = session.get(Pupil, pupil_id)
        assert pupil is not None
        assert pupil_account(session=session, pupil=pupil).balance_cents == \
            sum(5 * (100 + i) for i in range(6))
        assert check_integrity(session) == []


def test_refunds_need_a_reason_and_stop_at_the_balance(session: Session, pupil: Pupil) -> None:
    _topup(session, pupil, 2000, "a")
    with pytest.raises(ReasonRequiredError):
        office.refund(session=session, pupil=pupil, amount_cents=500, tender=Tender.CASH,
                      reason="  ", client_id="r1", actor=ACTOR)
    with pytest.raises(InvalidAmountError, match="at most the balance"):
        office.refund(session=session, pupil=pupil, amount_cents=2001, tender=Tender.CASH,
                      reason="leaving the school", client_id="r1", actor=ACTOR)
    done = office.refund(session=session, pupil=pupil, amount_cents=2000,
                         tender=Tender.TRANSFER, reason="leaving the school", client_id="r1",
                         actor=ACTOR)
    again = office.refund(session=session, pupil=pupil, amount_cents=2000,
                          tender=Tender.TRANSFER, reason="leaving the school", client_id="r1",
                          actor=ACTOR)
    assert again.replayed
    assert again.transaction.id == done.transaction.id
    assert _balance(session, pupil) == 0
    refunds = school_account(session=session, school_id=pupil.school_id,
                             kind=AccountKind.REFUNDS)
    assert balance_of(session, refunds) == 2000
    assert done.transaction.memo == "leaving the school"
    assert _actions(session) == ["money.topup", "money.refund"]


def test_a_cash_refund_comes_out_of_the_office_drawer(session: Session, pupil: Pupil) -> None:
    _topup(session, pupil, 2000, "a")
    office.refund(session=session, pupil=pupil, amount_cents=500, tender=Tender.CASH,
                  reason="overpaid", client_id="r1", actor=ACTOR)
    drawer = school_account(session=session, school_id=pupil.school_id,
                            kind=AccountKind.CASH_DRAWER)
    assert -balance_of(session, drawer) == 1500


def test_corrections_need_a_reason_and_may_go_either_way(session: Session,
                                                         pupil: Pupil) -> None:
    with pytest.raises(ReasonRequiredError):
        office.correct(session=session, pupil=pupil, amount_cents=300, reason="",
                       client_id="c0", actor=ACTOR)
    office.correct(session=session, pupil=pupil, amount_cents=300,
                   reason="meal charged twice on 12/11", client_id="c1", actor=ACTOR)
    office.correct(session=session, pupil=pupil, amount_cents=-100,
                   reason="picnic not charged", client_id="c2", actor=ACTOR)
    assert _balance(session, pupil) == 200
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "money.correction")
                          .order_by(col(AuditEvent.id))).all()
    assert [e.detail["reason"] for e in events] == ["meal charged twice on 12/11",
                                                    "picnic not charged"]


def test_a_mistake_is_reversed_once_with_a_reason(session: Session, pupil: Pupil) -> None:
    receipt = _topup(session, pupil, 2000, "a")
    txn = session.exec(select(LedgerTransaction)
                       .where(LedgerTransaction.client_id == receipt.client_id)).one()
    with pytest.raises(ReasonRequiredError):
        office.reverse_mistake(session=session, transaction=txn, reason="", client_id="v1",
                               actor=ACTOR)
    office.reverse_mistake(session=session, transaction=txn, reason="wrong pupil",
                           client_id="v1", actor=ACTOR)
    assert _balance(session, pupil) == 0
    with pytest.raises(NotReversibleError):
        office.reverse_mistake(session=session, transaction=txn, reason="again",
                               client_id="v2", actor=ACTOR)
    assert _actions(session) == ["money.topup", "money.reversal"]
    assert check_integrity(session) == []
