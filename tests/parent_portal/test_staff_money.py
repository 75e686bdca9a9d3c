"""Staff money pages: what office staff, cashiers and others may see and do."""

from __future__ import annotations

import re

from sqlmodel import Session, col, func, select

from cardpay import cards
from cardpay.account_models import Receipt
from cardpay.models import CardKind, LedgerTransaction
from school.models import AuditEvent, Role
from school.people import grant_role
from tests import factories
from tests.factories import SmallSchool
from tests.parent_portal.conftest import TestClient, signed_in
from tests.parent_portal.forms import hidden_fields, submit


def _money(pupil_id: int | None) -> str:
    return f"/staff/pupils/{pupil_id}/money"


def _balance(session: Session, school: SmallSchool, index: int = 0) -> int:
    return factories.balance_of(session, school.pupils[index])


def _topup(client: TestClient, pupil_id: int | None, **fields: str):  # type: ignore[no-untyped-def]
    return submit(client, _money(pupil_id), f"/staff/pupils/{pupil_id}/topup", **fields)


def test_office_tops_up_and_gets_a_numbered_printable_receipt(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    lea = small_school.pupils[0]
    signed_in(client, "office@example.org")
    done = _topup(client, lea.id, amount="20,50", tender="cheque", reference="n° 4411")
    assert done.status_code == 303
    receipt = client.get(done.headers["location"])
    assert receipt.status_code == 200
    assert "Reçu n° 1" in receipt.text
    assert "20,50\u00a0€" in receipt.text
    assert "Léa Martin" in receipt.text
    assert "n° 4411" in receipt.text
    assert 'src="/static/print.js"' in receipt.text
    assert _balance(session, small_school) == 2050
    second = _topup(client, lea.id, amount="5", tender="cash")
    assert "Reçu n° 2" in client.get(second.headers["location"]).text
    page = client.get(_money(lea.id)).text
    assert "25,50\u00a0€" in page
    assert "reçu n° 1" in page


def test_a_double_submitted_topup_posts_once(client: TestClient, small_school: SmallSchool,
                                             session: Session) -> None:
    lea = small_school.pupils[0]
    signed_in(client, "office@example.org")
    page = client.get(_money(lea.id)).text
    action = f"/staff/pupils/{lea.id}/topup"
    data = {**hidden_fields(page, action), "amount": "10", "tender": "cash"}
    first, again = client.post(action, data=data), client.post(action, data=data)
    assert first.headers["location"] == again.headers["location"]
    assert _balance(session, small_school) == 1000
    assert session.exec(select(func.count()).select_from(Receipt)).one() == 1


def test_bad_amounts_and_missing_reasons_change_nothing(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    lea = small_school.pupils[0]
    signed_in(client, "office@example.org")
    _topup(client, lea.id, amount="30", tender="cash")
    for amount in ("12.345", "-5", "1e3", "abc", "5000"):
        refused = _topup(client, lea.id, amount=amount, tender="cash")
        assert refused.status_code == 400, amount
        assert 'role="alert"' in refused.text
    refund = submit(client, _money(lea.id), f"/staff/pupils/{lea.id}/refund", amount="5",
                    tender="cash", reason=" ")
    assert refund.status_code == 400
    assert "Indiquez un motif." in refund.text
    too_much = submit(client, _money(lea.id), f"/staff/pupils/{lea.id}/refund", amount="31",
                      tender="cash", reason="leaving")
    assert "On ne peut pas rembourser plus que le solde." in too_much.text
    no_nonce = client.post(f"/staff/pupils/{lea.id}/topup", data={
        "csrf_token": hidden_fields(client.get(_money(lea.id)).text,
                                    f"/staff/pupils/{lea.id}/topup")["csrf_token"],
        "amount": "10", "tender": "cash"})
    assert no_nonce.status_code == 400
    assert _balance(session, small_school) == 3000


def test_refund_correction_and_reversal_with_reasons_in_the_audit_log(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    lea = small_school.pupils[0]
    signed_in(client, "admin@example.org")
    _topup(client, lea.id, amount="30", tender="cash")
    refund = submit(client, _money(lea.id), f"/staff/pupils/{lea.id}/refund", amount="10",
                    tender="transfer", reason="family moving away")
    assert refund.status_code == 303
    fix = submit(client, _money(lea.id), f"/staff/pupils/{lea.id}/correction", amount="1,50",
                 direction="debit", reason="picnic not charged")
    assert fix.status_code == 303
    assert _balance(session, small_school) == 1850
    txn = session.exec(select(LedgerTransaction).where(
        col(LedgerTransaction.memo) == "family moving away")).one()
    action = f"/staff/pupils/{lea.id}/transactions/{txn.id}/reverse"
    undone = submit(client, _money(lea.id), action, reason="refund was never paid")
    assert undone.status_code == 303
    assert _balance(session, small_school) == 2850
    page = client.get(_money(lea.id)).text
    assert "refund was never paid" in page
    assert action not in page  # a reversed transaction offers no second reversal
    session.rollback()
    reasons = [(e.action, e.detail.get("reason")) for e in session.exec(
        select(AuditEvent).where(col(AuditEvent.action).startswith("money."))
        .order_by(col(AuditEvent.id)))]
    assert reasons == [("money.topup", None), ("money.refund", "family moving away"),
                       ("money.correction", "picnic not charged"),
                       ("money.reversal", "refund was never paid")]


def test_cashiers_neither_see_nor_move_a_pupils_money(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    """A cashier sees a balance on the till screen, at a tap; never a pupil's account."""
    lea = small_school.pupils[0]
    signed_in(client, "office@example.org")
    _topup(client, lea.id, amount="30", tender="cash")
    client.post("/logout", data={"csrf_token": hidden_fields(
        client.get(_money(lea.id)).text, "/logout")["csrf_token"]})
    signed_in(client, "cashier@example.org")
    assert client.get(_money(lea.id)).status_code == 404
    token = hidden_fields(client.get("/account/sessions").text, "/logout")["csrf_token"]
    for action in ("topup", "refund", "correction"):
        refused = client.post(f"/staff/pupils/{lea.id}/{action}", data={
            "csrf_token": token, "amount": "5", "tender": "cash", "reason": "try",
            "direction": "credit", "nonce": "n" * 43})
        assert refused.status_code == 404, action
    assert _balance(session, small_school) == 3000


def test_teachers_and_other_schools_get_not_found(client: TestClient,
                                                  small_school: SmallSchool,
                                                  session: Session) -> None:
    lea = small_school.pupils[0]
    other = factories.school(session, slug="autre", name="Autre école")
    stranger = factories.user(session, "stranger@example.org")
    grant_role(session=session, user=stranger, school=other, role=Role.OFFICE)
    session.commit()
    signed_in(client, "teacher@example.org")
    assert client.get(_money(lea.id)).status_code == 404
    client.cookies.clear()
    signed_in(client, "stranger@example.org")
    assert client.get(_money(lea.id)).status_code == 404
    assert client.get(f"/staff/pupils/{lea.id}/statement").status_code == 404
    session.rollback()
    denied = session.exec(select(AuditEvent).where(AuditEvent.action == "access.denied")).all()
    assert len(denied) == 3


def test_the_pupil_page_shows_cards_and_flags_copyable_ones(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    lea = small_school.pupils[0]
    cards.issue_card(session=session, pupil=lea, uid="A1B2C3D4", kind=CardKind.UID)
    cards.issue_card(session=session, pupil=lea, uid="04A1B2C3D4E5F6", kind=CardKind.NTAG424)
    signed_in(client, "office@example.org")
    page = client.get(_money(lea.id)).text
    assert re.search(r"A1B2…D4</span>\s*<span class=\"badge status-retired\">remplacée", page)
    assert re.search(r"04A1…F6</span>\s*<span class=\"badge status-active\">active", page)
    assert page.count(">copiable<") == 1
    assert "A1B2C3D4" not in page  # never the whole UID
