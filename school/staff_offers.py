"""Offering roles to an account that already exists: the admin types an address, the
holder of the address gets a link, and the roles are theirs once they accept, signed in.

Until then nothing changes on the account, and the admin learns nothing about it: the
page they see is the one an unknown address gives (see parent_portal.routes.admin_users).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from school import audit
from school.auth_models import StaffOffer
from school.errors import InvalidInput
from school.models import Role, School, User
from school.people import grant_role
from school.security import new_token, token_digest

OFFER_DAYS = 7
OFFER_PATH = "/staff/offers/"


class OfferInvalid(InvalidInput):
    """An offer link that is unknown, expired, used, or meant for another account."""


def make_offer(*, session: Session, school: School, user: User, roles: list[Role],
               offered_by: int, now: datetime, ip: str | None = None) -> str:
    """Record the offer (the caller commits) and return the link's token."""
    token = new_token()
    session.add(StaffOffer(
        school_id=school.id or 0, user_id=user.id or 0,
        roles=",".join(r.value for r in roles), token_sha256=token_digest(token),
        offered_by=offered_by, created_at=now, expires_at=now + timedelta(days=OFFER_DAYS)))
    audit.record(session, action="staff.offer", school_id=school.id, actor_user_id=offered_by,
                 target_type="user", target_id=user.id or "", ip=ip,
                 roles=[r.value for r in roles])
    return token


def find_offer(session: Session, *, token: str, user_id: int, now: datetime) -> StaffOffer:
    """The live offer behind `token` for the signed-in `user_id`; OfferInvalid otherwise,
    without saying why."""
    offer = session.exec(select(StaffOffer).where(
        StaffOffer.token_sha256 == token_digest(token))).first()
    if (offer is None or offer.user_id != user_id or offer.accepted_at is not None
            or offer.expires_at <= now):
        raise OfferInvalid("this invitation is not valid for this account")
    return offer


def offered_roles(offer: StaffOffer) -> list[Role]:
    return [Role(value) for value in offer.roles.split(",") if value]


def accept_offer(*, session: Session, offer: StaffOffer, user: User, now: datetime,
                 ip: str | None = None) -> None:
    """Grant the roles offered; the caller commits."""
    school = session.get(School, offer.school_id)
    assert school is not None
    for role in offered_roles(offer):
        grant_role(session=session, user=user, school=school, role=role)
    offer.accepted_at = now
    session.add(offer)
    audit.record(session, action="staff.offer_accepted", school_id=offer.school_id,
                 actor_user_id=user.id, target_type="user", target_id=user.id or "", ip=ip,
                 roles=offer.roles.split(","))
