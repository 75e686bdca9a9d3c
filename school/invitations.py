"""Invitations: the link a new member of staff follows to choose their first password.

The link carries no secret kept in the database: it is signed (HMAC-SHA256 with the
server's secret key) over the user, the school, an expiry and the account's current
password state, in the manner of Django's password-reset tokens. It therefore stops
working once the password is chosen (it is single-use), when the account's e-mail
changes, when it expires, and for a deactivated account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from school import audit
from school.errors import InvalidInput
from school.models import User
from school.people import check_password_rules

INVITATION_DAYS = 7
_PURPOSE = b"moulin invitation v1"


class InvitationInvalid(InvalidInput):
    """An invitation link that is malformed, forged, expired or already used."""


@dataclass(frozen=True)
class Invitation:
    user_id: int
    school_id: int
    expires: int  # Unix time, seconds


def _mac(secret: str, user: User, school_id: int, expires: int) -> str:
    message = b"|".join([
        _PURPOSE, str(user.id).encode(), str(school_id).encode(), str(expires).encode(),
        user.email.encode(), (user.password_hash or "").encode(),
        b"active" if user.is_active else b"inactive",
    ])
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_token(*, secret: str, user: User, school_id: int, now: datetime,
               days: int = INVITATION_DAYS) -> str:
    expires = int((now + timedelta(days=days)).timestamp())
    return f"{user.id}.{school_id}.{expires}.{_mac(secret, user, school_id, expires)}"


def parse_token(token: str, now: datetime) -> Invitation:
    """The claims of a well-formed, unexpired token, not yet checked against the account."""
    parts = token.split(".")
    if len(parts) != 4 or not all(p.isdigit() for p in parts[:3]):
        raise InvitationInvalid("not an invitation link")
    invitation = Invitation(int(parts[0]), int(parts[1]), int(parts[2]))
    if datetime.fromtimestamp(invitation.expires, UTC) <= now:
        raise InvitationInvalid("this invitation has expired")
    return invitation


def check_token(session: Session, *, secret: str, token: str, now: datetime) -> Invitation:
    """The invitation a token stands for; InvitationInvalid for a forged, expired or
    used one, without saying which."""
    invitation = parse_token(token, now)
    user = session.get(User, invitation.user_id)
    if user is None or not user.is_active or user.password_hash is not None:
        raise InvitationInvalid("this invitation is no longer valid")
    expected = _mac(secret, user, invitation.school_id, invitation.expires)
    if not hmac.compare_digest(expected, token.rsplit(".", 1)[1]):
        raise InvitationInvalid("this invitation is no longer valid")
    return invitation


def accept(*, session: Session, secret: str, token: str, password_hash: str, now: datetime,
           ip: str | None = None) -> User:
    """Set the first password (hashed by the caller, outside any write transaction)."""
    invitation = check_token(session, secret=secret, token=token, now=now)
    user = session.get(User, invitation.user_id)
    assert user is not None
    user.password_hash = password_hash
    session.add(user)
    audit.record(session, action="user.invitation_accepted", school_id=invitation.school_id,
                 actor_user_id=user.id, target_type="user", target_id=user.id or "", ip=ip)
    return user


def check_new_password(password: str, confirm: str, *, email: str = "") -> None:
    """The password rules (school.passwords, WeakPassword when one fails), then the two
    copies typed must agree."""
    check_password_rules(password, email=email)
    if not hmac.compare_digest(password.encode(), confirm.encode()):
        raise InvalidInput("the two passwords differ")
