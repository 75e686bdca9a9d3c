"""The password-reset e-mail: written in the user's language and handed to the SMTP
server after the page has been answered.

It does not go through the outbox (cardpay.outbox), which keeps every body in the
database: the link holds the only copy of the token, and the database only its SHA-256.
A lost e-mail is simply asked for again; and since sending starts after the answer, how
long the page takes says nothing about whether the address has an account.
"""

from __future__ import annotations

import logging
import smtplib
from typing import cast

from fastapi import Request

from cardpay.outbox import Outgoing, SmtpConfig, send
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


def compose(*, reset_id: int, to: str, lang: str, link: str, minutes: int) -> Outgoing:
    subject, body = MESSAGES.get(lang, MESSAGES["fr"])
    return Outgoing(id=reset_id, to_address=to, subject=subject,
                    body=body.format(email=to, minutes=minutes, link=link))


def deliver(config: SmtpConfig, email: Outgoing) -> None:
    """Send now; failures are logged (with the reset's id, never the link)."""
    try:
        send(config, email)
    except (OSError, smtplib.SMTPException) as exc:
        logger.warning("password-reset e-mail %s not sent: %s", email.id, type(exc).__name__)
        return
    logger.info("password-reset e-mail %s sent", email.id)
