"""A pupil leaving: the balance refunded or moved to a sibling, the account closed, cards
retired, guardianships ended on the leaving date, all audited; a closed account refuses
taps and top-ups with its own reason."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from cardpay import cards, leaving, office, topups
from cardpay.account_models import Tender
from cardpay.accounts import pupil_account, school_account
from cardpay.errors import AccountClosedError, LeavingError, MoneyInputError
from cardpay.integrity import check_integrity
from cardpay.ledger import balance_of, balances
from cardpay.models import (
    Account,
    AccountKind,
    Card,
    CardKind,
    CardStatus,
    LedgerTransaction,
    Posting,
    TransactionKind,
)
from cardpay.payments.demo import DemoProvider
from cardpay.sun import Keyring
from cardpay.till import TapRequest, Till
from school.db import immediate_session
from school.devices import add_device
from school.models import AuditEvent, DeviceKind, Guardianship, Pupil
from school.people import children_of, is_guardian_of
from tests.conftest import FakeClock
from tests.factories import SmallSchool

TODAY = date(2026, 11, 24)
LEFT_ON = date(2026, 11, 28)


def _actor(s: SmallSchool) -> office.Actor:
    assert s.office.id is not None
    return office.Actor(user_id=s.office.id, ip="10.0.0.9")


def _topup(engine: Engine, s: SmallSchool, pupil: Pupil, cents: int, nonce: str) -> None:
    with immediate_session(engine) as ledger:
        office.office_topup(session=ledger, pupil=ledger.get(Pupil, pupil.id), amount_cents=cents,
                            tender=Tender.CASH, client_id=f"top:{nonce}", actor=_actor(s))


def _balance(engine: Engine, pupil: Pupil) -> int:
    with Session(engine) as read:
        found = read.exec(select(Account.balance_cents)
                          .where(Account.pupil_id == pupil.id)).first()
    return int(found or 0)


def _close(engine: Engine, s: SmallSchool, pupil: Pupil,
           settlement: leaving.Settlement | None, nonce: str = "n1") -> leaving.Closed:
    with immediate_session(engine) as ledger:
        return leaving.close_account(
            session=ledger, pupil=ledger.get(Pupil, pupil.id), left_on=LEFT_ON,  # type: ignore[arg-type]
            settlement=settlement, client_id=f"leave:{nonce}", actor=_actor(s), today=TODAY)


def _total(engine: Engine) -> int:
    """The sum of every account's balance (a system account's from its postings)."""
    with Session(engine) as read:
        ids = [i for i in read.exec(select(Account.id)).all() if i is not None]
        return sum(balances(read, ids).values())


def test_a_refund_empties_the_account_closes_it_and_is_audited(
    engine: Engine, small_school: SmallSchool, session: Session
) -> None:
    lea = small_school.pupils[0]
    cards.issue_card(session=session, pupil=lea, uid="04A1B2C3", kind=CardKind.UID)
    _topup(engine, small_school, lea, 2350, "a")
    total = _total(engine)
    closed = _close(engine, small_school, lea, leaving.Settlement(
        leaving.Settle.REFUND, reason="family moves away", tender=Tender.TRANSFER))
    assert (closed.settled_cents, closed.how, closed.cards_retired) == (2350, "refund", 1)
    assert _balance(engine, lea) == 0
    assert _total(engine) == total  # money moved between accounts, none appeared or vanished
    with Session(engine) as read:
        assert read.exec(select(func.sum(Posting.amount_cents))).one() == 0
        assert check_integrity(read) == []
        refunds = school_account(session=read, school_id=lea.school_id,
                                 kind=AccountKind.REFUNDS)
        assert balance_of(read, refunds) == 2350  # what the school owes the family
        txn = read.get(LedgerTransaction, closed.transaction_id)
        assert txn is not None
        assert (txn.kind, txn.memo) == (TransactionKind.REFUND, "family moves away")
        pupil = read.get(Pupil, lea.id)
        assert pupil is not None
        assert pupil.left_on == LEFT_ON
        assert read.exec(select(Card.status).where(Card.pupil_id == lea.id)).all() == [
            CardStatus.RETIRED]
        account = read.exec(select(Account).where(Account.pupil_id == lea.id)).one()
        assert account.closed_at is not None
        links = read.exec(select(Guardianship).where(Guardianship.pupil_id == lea.id)).all()
        assert [link.ends_on for link in links] == [LEFT_ON]
        # The guardian keeps access until the leaving date, and loses it that day.
        parent_id = small_school.parent.id or 0
        assert is_guardian_of(read, parent_id, lea.id or 0, date(2026, 11, 27))
        assert not is_guardian_of(read, parent_id, lea.id or 0, LEFT_ON)
        events = read.exec(select(AuditEvent).where(AuditEvent.target_type == "pupil",
                                                    AuditEvent.target_id == str(lea.id))
                           .order_by(col(AuditEvent.id))).all()
    leave = next(e for e in events if e.action == "pupil.leave")
    assert leave.actor_user_id == small_school.office.id
    assert leave.detail == {"left_on": "2026-11-28", "balance_cents": 2350, "settled": "refund",
                            "cards_retired": 1, "guardianships_ended": 1}
    refund = next(e for e in events if e.action == "money.refund")
    assert refund.detail["amount_cents"] == 2350
    assert refund.detail["tender"] == "transfer"


def test_a_transfer_moves_the_balance_to_a_sibling(
    engine: Engine, small_school: SmallSchool
) -> None:
    lea, _hugo, jules = small_school.pupils
    _topup(engine, small_school, lea, 1200, "a")
    _topup(engine, small_school, jules, 300, "b")
    total = _total(engine)
    with Session(engine) as read:
        # Jules shares Léa's guardian; Hugo is another family's child.
        assert [p.id for p in leaving.siblings_of(read, lea, TODAY)] == [jules.id]
    closed = _close(engine, small_school, lea,
                    leaving.Settlement(leaving.Settle.TRANSFER, sibling=jules))
    assert closed.how is leaving.Settle.TRANSFER
    assert (_balance(engine, lea), _balance(engine, jules)) == (0, 1500)
    assert _total(engine) == total
    with Session(engine) as read:
        txn = read.get(LedgerTransaction, closed.transaction_id)
        assert txn is not None
        assert txn.kind is TransactionKind.TRANSFER
        assert "Léa" not in txn.memo
        assert "Jules" not in txn.memo
        assert check_integrity(read) == []
        assert read.exec(select(AuditEvent.detail).where(
            AuditEvent.action == "money.transfer")).one() == {
            "amount_cents": 1200, "to_pupil_id": jules.id}


def test_a_transfer_to_another_familys_child_is_refused_and_changes_nothing(
    engine: Engine, small_school: SmallSchool
) -> None:
    lea, hugo, _ = small_school.pupils
    _topup(engine, small_school, lea, 1200, "a")
    with pytest.raises(LeavingError) as refused:
        _close(engine, small_school, lea,
               leaving.Settlement(leaving.Settle.TRANSFER, sibling=hugo))
    assert refused.value.code == "leaving.sibling"
    assert (_balance(engine, lea), _balance(engine, hugo)) == (1200, 0)
    with Session(engine) as read:
        pupil = read.get(Pupil, lea.id)
        assert pupil is not None
        assert pupil.left_on is None
        assert read.exec(select(Account.closed_at).where(Account.pupil_id == lea.id)).one() \
            is None
        assert read.exec(select(AuditEvent).where(AuditEvent.action == "pupil.leave")).all() \
            == []


@pytest.mark.parametrize(("cents", "settlement", "code"), [
    (-350, None, "leaving.debt"),
    (500, None, "leaving.settle"),
    (500, leaving.Settlement(leaving.Settle.REFUND, reason=""), "reason.required"),
])
def test_a_debt_or_an_unsettled_balance_keeps_the_account_open(
    engine: Engine, small_school: SmallSchool, session: Session, cents: int,
    settlement: leaving.Settlement | None, code: str,
) -> None:
    lea = small_school.pupils[0]
    if cents > 0:
        _topup(engine, small_school, lea, cents, "a")
    else:
        with immediate_session(engine) as ledger:
            office.correct(session=ledger, pupil=ledger.get(Pupil, lea.id),  # type: ignore[arg-type]
                           amount_cents=cents, reason="meal owed", client_id="c",
                           actor=_actor(small_school))
    with pytest.raises(MoneyInputError) as refused:
        _close(engine, small_school, lea, settlement)
    assert refused.value.code == code
    assert _balance(engine, lea) == cents
    with Session(engine) as read:
        assert read.exec(select(Account.closed_at).where(Account.pupil_id == lea.id)).one() \
            is None


def test_a_closed_account_refuses_taps_and_top_ups_with_a_clear_reason(
    engine: Engine, small_school: SmallSchool, session: Session, clock: FakeClock
) -> None:
    lea = small_school.pupils[0]
    cards.issue_card(session=session, pupil=lea, uid="04A1B2C3", kind=CardKind.UID)
    device, _ = add_device(session=session, school=small_school.school, kind=DeviceKind.TILL,
                           name="till-1")
    session.commit()
    _close(engine, small_school, lea, None)
    till = Till(engine=engine, keyring=Keyring(b"k" * 32), clock=clock)
    verdict = till.tap(device, TapRequest(tap_id="t1", read_at=clock(), uid="04A1B2C3"))
    assert not verdict.accepted
    assert verdict.reason == "account_closed"
    assert verdict.message == "Compte fermé : l'élève a quitté l'école"
    with pytest.raises(AccountClosedError), immediate_session(engine) as ledger:
        office.office_topup(session=ledger, pupil=ledger.get(Pupil, lea.id),  # type: ignore[arg-type]
                            amount_cents=1000, tender=Tender.CASH, client_id="late",
                            actor=_actor(small_school))
    with pytest.raises(AccountClosedError), Session(engine) as write:
        topups.start_topup(session=write, provider=DemoProvider(secret="s" * 32),
                           pupil=write.get(Pupil, lea.id),  # type: ignore[arg-type]
                           payer=small_school.parent, amount_cents=1000,
                           urls=topups.CheckoutUrls("http://x/ok", "http://x/no"))
    assert _balance(engine, lea) == 0
    with Session(engine) as read:
        assert [p.id for p in children_of(read, small_school.parent.id or 0, LEFT_ON)] == [
            small_school.pupils[2].id]


def test_money_arriving_after_closing_is_settled_again(
    engine: Engine, small_school: SmallSchool
) -> None:
    lea, _, jules = small_school.pupils
    _close(engine, small_school, lea, None)
    with immediate_session(engine) as ledger:  # an online payment started before closing
        from cardpay.ledger import post
        account = pupil_account(session=ledger, pupil=ledger.get(Pupil, lea.id))  # type: ignore[arg-type]
        clearing = school_account(session=ledger, school_id=lea.school_id,
                                  kind=AccountKind.ONLINE_CLEARING)
        post(session=ledger, school_id=lea.school_id, kind=TransactionKind.TOPUP,
             client_id="late-payment", legs=[(clearing, -800), (account, 800)])
    with immediate_session(engine) as ledger:
        leaving.settle_closed(session=ledger, pupil=ledger.get(Pupil, lea.id),  # type: ignore[arg-type]
                              settlement=leaving.Settlement(leaving.Settle.TRANSFER,
                                                            sibling=jules),
                              client_id="settle:1", actor=_actor(small_school), today=TODAY)
    assert (_balance(engine, lea), _balance(engine, jules)) == (0, 800)
    with pytest.raises(LeavingError) as again, immediate_session(engine) as ledger:
        leaving.settle_closed(session=ledger, pupil=ledger.get(Pupil, lea.id),  # type: ignore[arg-type]
                              settlement=leaving.Settlement(leaving.Settle.REFUND,
                                                            reason="again"),
                              client_id="settle:2", actor=_actor(small_school), today=TODAY)
    assert again.value.code == "leaving.nothing"
