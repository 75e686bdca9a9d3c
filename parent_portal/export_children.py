"""A parent's children in the family export: each child's record, card, lunch account
with every transaction, receipts, meals, limits and alerts (see parent_portal.export).

A child is included while the parent is their guardian, and after the child left the
school if the guardianship lasted until then; a guardianship that ended earlier (custody
lost) gives nothing of the child but the guardianship itself. Of the child's other
guardians only the name and relation are given: their contact details and any other
children they have belong to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from cardpay import history
from cardpay.account_models import LowBalanceAlert, LunchSettings, Receipt
from cardpay.cards import mask_uid
from cardpay.models import Account, Card, LedgerTransaction, Tap
from cardpay.money import format_cents
from school.models import Classroom, Device, Guardianship, Pupil, School, User

# Memos parents already read on their account page; others are the office's own notes.
SHOWN_MEMOS = frozenset({"refund", "correction", "reversal", "transfer"})


@dataclass(frozen=True)
class Out:
    """How values are written: times in the school's zone, amounts in cents and as read."""

    zone: str
    lang: str
    currency: str

    def when(self, at: datetime | None) -> str | None:
        return at.astimezone(ZoneInfo(self.zone)).isoformat(timespec="seconds") if at else None

    def money(self, key: str, cents: int | None) -> dict[str, Any]:
        shown = format_cents(cents, self.lang, self.currency) if cents is not None else None
        return {f"{key}_cents": cents, key: shown}


def lasted_for(link: Guardianship, pupil: Pupil, today: date) -> bool:
    """The guardianship is current, or lasted until the child left the school."""
    if link.active_on(today):
        return True
    return pupil.left_on is not None and link.ends_on is not None and \
        link.ends_on >= pupil.left_on


def children_of(session: Session, user_id: int, today: date) -> list[Pupil]:
    rows = session.exec(
        select(Guardianship, Pupil).join(Pupil, col(Pupil.id) == col(Guardianship.pupil_id))
        .where(Guardianship.user_id == user_id, col(Pupil.anonymised_at).is_(None))
        .order_by(Pupil.last_name, Pupil.first_name)
    ).all()
    found: dict[int, Pupil] = {}
    for link, pupil in rows:
        if pupil.id is not None and lasted_for(link, pupil, today):
            found[pupil.id] = pupil
    return list(found.values())


def names(session: Session, user_ids: set[int | None]) -> dict[int, str]:
    """People's names, never their addresses: who did what, as the family may know."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    rows = session.exec(select(User.id, User.full_name).where(col(User.id).in_(ids))).all()
    # A name typed as an address would hand out a contact: leave it out.
    return {uid: "" if "@" in name else name for uid, name in rows if uid is not None}


def child(session: Session, pupil: Pupil, *, user_id: int, today: date,
          out: Out) -> dict[str, Any]:
    school = session.get(School, pupil.school_id)
    room = session.get(Classroom, pupil.classroom_id) if pupil.classroom_id else None
    account = session.exec(select(Account).where(Account.pupil_id == pupil.id)).first()
    return {
        "pupil": {
            "id": pupil.id, "first_name": pupil.first_name, "last_name": pupil.last_name,
            "birth_date": pupil.birth_date.isoformat() if pupil.birth_date else None,
            "school": school.name if school else None, "class": room.name if room else None,
            "school_reference": pupil.external_ref, "allergies": pupil.allergies,
            "diet_notes": pupil.diet_notes, "tariff_band": pupil.tariff_band,
            "left_on": pupil.left_on.isoformat() if pupil.left_on else None,
        },
        "other_guardians": _other_guardians(session, pupil, user_id, today),
        "cards": [{"kind": c.kind.value, "status": c.status.value, "uid": mask_uid(c.uid),
                   "issued_at": out.when(c.created_at),
                   "status_changed_at": out.when(c.status_changed_at)}
                  for c in session.exec(select(Card).where(Card.pupil_id == pupil.id)
                                        .order_by(col(Card.id))).all()],
        "account": None if account is None else {
            **out.money("balance", account.balance_cents),
            **out.money("floor", account.floor_cents),
            "opened_at": out.when(account.created_at), "closed_at": out.when(account.closed_at),
        },
        "transactions": _transactions(session, account, out) if account else [],
        "receipts": _receipts(session, pupil, out),
        "meals": _meals(session, pupil, out),
        "limits": _limits(session, pupil, out),
        "alerts": [{"created_at": out.when(a.created_at), **out.money("balance", a.balance_cents),
                    **out.money("threshold", a.threshold_cents),
                    "rearmed_at": out.when(a.rearmed_at)}
                   for a in session.exec(select(LowBalanceAlert)
                                         .where(LowBalanceAlert.pupil_id == pupil.id)
                                         .order_by(col(LowBalanceAlert.id))).all()],
    }


def _other_guardians(session: Session, pupil: Pupil, user_id: int,
                     today: date) -> list[dict[str, Any]]:
    rows = session.exec(
        select(Guardianship, User.full_name).join(User, col(User.id) == Guardianship.user_id)
        .where(Guardianship.pupil_id == pupil.id, Guardianship.user_id != user_id)
        .order_by(col(Guardianship.id))
    ).all()
    return [{"name": name, "relation": link.relation}
            for link, name in rows if lasted_for(link, pupil, today)]


def _transactions(session: Session, account: Account, out: Out) -> list[dict[str, Any]]:
    lines = history.lines(session, account, newest_first=False)
    actors = {tid: (uid, did) for tid, uid, did in session.exec(
        select(LedgerTransaction.id, LedgerTransaction.actor_user_id,
               LedgerTransaction.actor_device_id)
        .where(col(LedgerTransaction.id).in_([line.transaction_id for line in lines]))
    ).all()}
    people = names(session, {uid for uid, _ in actors.values()})
    devices = _device_names(session, {did for _, did in actors.values()})
    rows = []
    for line in lines:
        uid, did = actors.get(line.transaction_id, (None, None))
        rows.append({
            "id": line.transaction_id, "occurred_at": out.when(line.occurred_at),
            "posted_at": out.when(line.posted_at), "kind": line.kind.value,
            **out.money("amount", line.amount_cents),
            **out.money("balance_after", line.balance_after_cents),
            "receipt": line.receipt_number, "reverses": line.reverses_id,
            "reversed_by": line.reversed_by_id,
            "memo": line.memo if line.kind.value in SHOWN_MEMOS else "",
            "by": people.get(uid) if uid is not None else devices.get(did or 0),
        })
    return rows


def _device_names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows: Sequence[tuple[int | None, str]] = session.exec(
        select(Device.id, Device.name).where(col(Device.id).in_(wanted))).all()
    return {did: name for did, name in rows if did is not None}


def _receipts(session: Session, pupil: Pupil, out: Out) -> list[dict[str, Any]]:
    found = session.exec(select(Receipt).where(Receipt.pupil_id == pupil.id)
                         .order_by(col(Receipt.number))).all()
    people = names(session, {r.issued_by_user_id for r in found})
    return [{"number": r.number, "issued_at": out.when(r.issued_at), "tender": r.tender.value,
             **out.money("amount", r.amount_cents), "reference": r.reference,
             "by": people.get(r.issued_by_user_id or 0)} for r in found]


def _meals(session: Session, pupil: Pupil, out: Out) -> list[dict[str, Any]]:
    taps = session.exec(select(Tap).where(Tap.pupil_id == pupil.id)
                        .order_by(col(Tap.read_at), col(Tap.id))).all()
    tills = _device_names(session, {t.device_id for t in taps})
    return [{"read_at": out.when(t.read_at), "accepted": t.accepted, "reason": t.reason,
             **out.money("price", t.price_cents), "offline": t.decided_offline,
             "repeat": t.repeat_of_id is not None, "till": tills.get(t.device_id),
             "card": mask_uid(t.card_uid) if t.card_uid else ""} for t in taps]


def _limits(session: Session, pupil: Pupil, out: Out) -> dict[str, Any] | None:
    row = session.get(LunchSettings, pupil.id)
    if row is None:
        return None
    who = names(session, {row.updated_by_user_id})
    return {**out.money("daily_limit", row.daily_limit_cents),
            **out.money("alert_below", row.low_balance_alert_cents),
            "updated_at": out.when(row.updated_at),
            "updated_by": who.get(row.updated_by_user_id or 0)}
