"""Sending a new member of staff the link to choose their password.

The e-mail goes through the outbox, committed with the account it invites. When this
server has no mail server configured, the admin is shown the link instead, once, to hand
over in person (see `school.invitations` for why the link needs no table of its own).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlmodel import Session

from cardpay.account_models import OutboxEmail
from parent_portal.deps import get_clock, get_settings
from parent_portal.i18n import translator
from school import audit, invitations
from school import staff_offers as offers
from school.models import School, User
from school.staff import Actor

WELCOME_PATH = "/welcome/"


@dataclass(frozen=True)
class Sent:
    emailed: bool
    link: str  # shown to the admin only when no e-mail can carry it


def link_for(request: Request, token: str) -> str:
    # Never from the request's Host header (see Settings.link_base); in production the
    # settings refuse to start without a public URL where links are mailed.
    base = get_settings(request).link_base() or ""
    return base + WELCOME_PATH + token


def invite(request: Request, session: Session, *, school: School, user: User,
           actor: Actor) -> Sent:
    """Queue the invitation e-mail for `user` (the caller commits) and audit it."""
    settings, now = get_settings(request), get_clock(request)()
    token = invitations.make_token(secret=settings.effective_secret_key(), user=user,
                                   school_id=school.id or 0, now=now)
    link = link_for(request, token)
    t = translator(user.locale or school.locale)
    values = {"name": user.full_name or user.email, "school": school.name, "link": link,
              "days": invitations.INVITATION_DAYS}
    session.add(OutboxEmail(
        school_id=school.id, user_id=user.id, to_address=user.email,
        subject=t("invite.mail.subject", **values)[:200], body=t("invite.mail.body", **values),
        created_at=now, next_attempt_at=now))
    emailed = bool(settings.smtp_host)
    audit.record(session, action="user.invite", school_id=school.id, actor_user_id=actor.user_id,
                 target_type="user", target_id=user.id or "", ip=actor.ip, emailed=emailed)
    return Sent(emailed=emailed, link="" if emailed else link)


def send_offer(request: Request, session: Session, *, school: School, user: User,
               token: str) -> Sent:
    """Queue the e-mail that offers an existing account roles in `school` (the caller
    commits): the link asks its holder to sign in and accept."""
    settings, now = get_settings(request), get_clock(request)()
    link = (settings.link_base() or "") + offers.OFFER_PATH + token
    t = translator(user.locale or school.locale)
    values = {"school": school.name, "link": link, "days": offers.OFFER_DAYS}
    session.add(OutboxEmail(
        school_id=school.id, user_id=user.id, to_address=user.email,
        subject=t("offer.mail.subject", **values)[:200], body=t("offer.mail.body", **values),
        created_at=now, next_attempt_at=now))
    emailed = bool(settings.smtp_host)
    return Sent(emailed=emailed, link="" if emailed else link)
