"""The password-reset e-mail, sent from the outbox (cardpay.outbox) as a job.

A request for a known address and one for an unknown address do the same work: each
queues one `password_reset` job, the first for the account, the second for nobody, so
how long the page takes says nothing about whether the address has an account. The
worker's writer (`writer`) mints the link when it sends the e-mail: the link holds the
only copy of the token (the database keeps its SHA-256), and the outbox row holds no
link, no address and no body. A retried e-mail gets a new link, which voids the last.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import cast

from fastapi import Request
from sqlmodel import Session

from cardpay.account_models import OutboxEmail
from cardpay.outbox import Outgoing, SmtpConfig, Writer
from school import audit, password_reset
from school.models import User
from school.settings import Settings

logger = logging.getLogger(__name__)

MESSAGES = {
    "fr": ("Moulin : réinitialiser votre mot de passe",
           "Bonjour,\n\nQuelqu'un (vous, sans doute) a demandé à réinitialiser le mot de passe "
           "du compte Moulin {email}.\n\nPour choisir un nouveau mot de passe, ouvrez ce lien "
           "dans les {minutes} minutes :\n\n{link}\n\nLe lien ne sert qu'une fois. Si vous "
           "n'avez rien demandé, ignorez ce message : votre mot de passe ne change pas.\n"),
    "en": ("Moulin: reset your password",
           "Hello,\n\nSomeone (probably you) asked to reset the password of the Moulin "
           "account {email}.\n\nTo choose a new password, open this link within {minutes} "
           "minutes:\n\n{link}\n\nThe link works once. If you did not ask for this, ignore "
           "this message: your password stays as it is.\n"),
}


def smtp_of(request: Request) -> SmtpConfig | None:
    return cast(SmtpConfig | None, getattr(request.app.state, "smtp", None))


def link_base(settings: Settings) -> str | None:
    """Where the link points (`Settings.link_base`): never the request's Host header."""
    return settings.link_base()


RESET_KIND = "password_reset"


def job(*, user: User | None, lang: str, now: datetime) -> OutboxEmail:
    """The outbox row for a request: for `user`, or for nobody (an unknown or inactive
    address), alike in everything the request writes."""
    return OutboxEmail(kind=RESET_KIND, user_id=user.id if user else None, to_address="",
                       subject="", body=lang, created_at=now, next_attempt_at=now)


def writer(settings: Settings) -> Writer:
    """The outbox's writer for reset jobs: mints the link as the e-mail goes out."""

    def write(session: Session, row: OutboxEmail, now: datetime) -> Outgoing | None:
        user = session.get(User, row.user_id) if row.user_id is not None else None
        base = link_base(settings)
        if user is None or not user.is_active or base is None or row.id is None:
            return None
        reset, token = password_reset.issue(
            session, user, now=now, ip=None,
            lifetime=timedelta(minutes=settings.password_reset_minutes))
        audit.record(session, action="password_reset.sent", actor_user_id=user.id,
                     target_type="password_reset", target_id=reset.id or "")
        lang = user.locale if user.locale in MESSAGES else row.body
        return compose(reset_id=row.id, to=user.email, lang=lang,
                       link=f"{base}/login/reset/{token}",
                       minutes=settings.password_reset_minutes)

    return write


def compose(*, reset_id: int, to: str, lang: str, link: str, minutes: int) -> Outgoing:
    subject, body = MESSAGES.get(lang, MESSAGES["fr"])
    return Outgoing(id=reset_id, to_address=to, subject=subject,
                    body=body.format(email=to, minutes=minutes, link=link))
