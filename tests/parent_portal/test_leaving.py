"""The leaving page: office staff close a pupil's account; cashiers and other schools'
staff cannot; the family then sees the account closed and cannot top it up."""

from __future__ import annotations

import html

from sqlmodel import Session, select

from cardpay.account_models import TopUpIntent
from cardpay.models import Account
from school.models import AuditEvent
from tests import factories
from tests.factories import SmallSchool
from tests.parent_portal.conftest import TestClient, csrf_from, signed_in
from tests.parent_portal.forms import submit


def _leave(pupil_id: int | None) -> str:
    return f"/staff/pupils/{pupil_id}/leave"


def test_office_refunds_and_closes_from_the_page(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    lea = small_school.pupils[0]
    signed_in(client, "office@example.org")
    money = client.get(f"/staff/pupils/{lea.id}/money").text
    assert f'href="{_leave(lea.id)}"' in money
    assert submit(client, f"/staff/pupils/{lea.id}/money", f"/staff/pupils/{lea.id}/topup",
                  amount="12,40", tender="cash").status_code == 303
    page = client.get(_leave(lea.id))
    assert "Solde à rendre : 12,40\u00a0€" in page.text
    assert "Jules Martin" in page.text  # the sibling to transfer to
    assert "Hugo Bernard" not in page.text  # another family's child is not offered
    refused = submit(client, _leave(lea.id), _leave(lea.id), left_on="2026-11-30",
                     how="refund", tender="cash", reason="")
    assert refused.status_code == 400
    assert "Indiquez un motif." in refused.text
    done = submit(client, _leave(lea.id), _leave(lea.id), left_on="2026-11-30", how="refund",
                  tender="cash", reason="départ en cours d'année")
    assert done.status_code == 303
    after = client.get(done.headers["location"]).text
    assert "Départ enregistré" in after
    assert "départ le 30/11/2026" in after
    assert factories.balance_of(session, lea) == 0  # reads afresh
    assert session.exec(select(AuditEvent.action).where(
        AuditEvent.action == "pupil.leave")).all() == ["pupil.leave"]
    # A second form for the same pupil is refused, and nothing more is posted.
    again = client.post(_leave(lea.id), data={"csrf_token": "x"})
    assert again.status_code == 403
    refused = submit(client, f"/staff/pupils/{lea.id}/money", f"/staff/pupils/{lea.id}/topup",
                     amount="5", tender="cash")
    assert refused.status_code == 400
    assert "Ce compte est fermé : l'élève a quitté l'école." in html.unescape(refused.text)


def test_a_transfer_to_a_sibling_from_the_page(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    lea, _, jules = small_school.pupils
    signed_in(client, "office@example.org")
    submit(client, f"/staff/pupils/{lea.id}/money", f"/staff/pupils/{lea.id}/topup",
           amount="7", tender="cash")
    done = submit(client, _leave(lea.id), _leave(lea.id), left_on="2026-11-24",
                  how="transfer", sibling=str(jules.id))
    assert done.status_code == 303
    assert factories.balance_of(session, lea) == 0
    assert factories.balance_of(session, jules) == 700


def test_cashiers_may_not_close_and_parents_see_the_account_closed(
    client: TestClient, small_school: SmallSchool, session: Session
) -> None:
    lea = small_school.pupils[0]
    signed_in(client, "cashier@example.org")
    assert client.get(_leave(lea.id)).status_code == 404  # not even the pupil's account
    client.cookies.clear()
    signed_in(client, "teacher@example.org")
    assert client.get(_leave(lea.id)).status_code == 404
    client.cookies.clear()
    signed_in(client, "office@example.org")
    assert submit(client, _leave(lea.id), _leave(lea.id),
                  left_on="2026-12-18").status_code == 303
    session.rollback()  # a fresh read, after the page's commit
    assert session.exec(select(Account.closed_at).where(Account.pupil_id == lea.id)).one()
    client.cookies.clear()
    signed_in(client, "parent@example.org")
    account = client.get(f"/parent/children/{lea.id}/account")
    assert account.status_code == 200  # guardianship lasts until the leaving date
    assert "Compte fermé le" in account.text
    assert f'action="/parent/children/{lea.id}/topup"' not in account.text
    # A form kept open from before is refused with the reason, and nothing is started.
    refused = client.post(f"/parent/children/{lea.id}/topup",
                          data={"csrf_token": csrf_from(account.text), "amount": "20"})
    assert refused.status_code == 400
    assert "Ce compte est fermé : l'élève a quitté l'école." in html.unescape(refused.text)
    assert session.exec(select(TopUpIntent)).all() == []
