"""Time-based one-time codes (TOTP, RFC 6238, through pyotp) as a second sign-in factor,
and the one-time recovery codes that stand in for a lost phone.

A code is accepted for its 30-second step and one step either side (phone clocks drift),
and only for a step later than the last one accepted for that user, so the same code,
or an older one, never works twice. Nothing here commits: callers commit with their audit
row.

The secret is stored sealed (`seal_secret`): Fernet (AES-128-CBC and HMAC-SHA256) under a
key derived with HKDF-SHA256 from the deployment's secret key, so a copied database or
backup hands out no second factor. Changing the secret key therefore means setting up
TOTP again (`moulin user reset-totp`).
"""

from __future__ import annotations

import base64
import hmac
import secrets
from datetime import datetime

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import update
from sqlmodel import Session, col, or_, select

from school.auth_models import RecoveryCode
from school.models import User
from school.security import token_digest

ISSUER = "Moulin"
DRIFT_STEPS = 1
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
_RECOVERY_GROUPS, _RECOVERY_GROUP = 4, 4  # 16 characters, about 78 bits


SEALED_PREFIX = "v1:"
_HKDF_INFO = b"moulin/totp-secret/v1"


class SecretUnreadable(ValueError):
    """A stored TOTP secret sealed under another secret key, or altered."""


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=_HKDF_INFO).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal_secret(secret: str, secret_key: str) -> str:
    """The secret as stored in `app_user.totp_secret`."""
    return SEALED_PREFIX + _fernet(secret_key).encrypt(secret.encode()).decode("ascii")


def open_secret(stored: str, secret_key: str) -> str:
    """The secret behind a stored value; SecretUnreadable if it cannot be opened."""
    if not stored.startswith(SEALED_PREFIX):
        raise SecretUnreadable("a TOTP secret stored unsealed")
    try:
        return _fernet(secret_key).decrypt(stored[len(SEALED_PREFIX):].encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise SecretUnreadable("TOTP secret sealed with another key, or altered") from exc


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, issuer: str = ISSUER) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def _digits(code: str) -> str:
    return "".join(ch for ch in code if not ch.isspace())


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is, within the allowed drift, or None."""
    code = _digits(code)
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def use_code(session: Session, user: User, code: str, now: datetime, *,
             secret_key: str) -> bool:
    """Accept `code` for `user`'s secret (enrolled or being enrolled) once: True if it is
    right and newer than the last code accepted, which it then becomes."""
    if not user.totp_secret or user.id is None:
        return False
    try:
        secret = open_secret(user.totp_secret, secret_key)
    except SecretUnreadable:
        return False
    step = matching_step(secret, code, now)
    if step is None:
        return False
    # One conditional update, so two requests racing with the same code cannot both win.
    result = session.exec(
        update(User)
        .where(col(User.id) == user.id,
               or_(col(User.totp_last_step).is_(None), col(User.totp_last_step) < step))
        .values(totp_last_step=step)
    )
    if result.rowcount != 1:
        return False
    user.totp_last_step = step
    return True


def _normal_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def looks_like_recovery_code(code: str) -> bool:
    return len(_normal_recovery(code)) == _RECOVERY_GROUPS * _RECOVERY_GROUP


def new_recovery_codes(session: Session, user_id: int, now: datetime) -> list[str]:
    """Replace the user's recovery codes with fresh ones; return them, to be shown once."""
    discard_recovery_codes(session, user_id)
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET)
                      for _ in range(_RECOVERY_GROUPS * _RECOVERY_GROUP))
        codes.append("-".join(raw[i:i + _RECOVERY_GROUP]
                              for i in range(0, len(raw), _RECOVERY_GROUP)))
        session.add(RecoveryCode(user_id=user_id, code_sha256=token_digest(raw),
                                 created_at=now))
    return codes


def use_recovery_code(session: Session, user_id: int, code: str, now: datetime) -> bool:
    """Spend one of the user's unused recovery codes: True if `code` was one."""
    digest = token_digest(_normal_recovery(code))
    result = session.exec(
        update(RecoveryCode)
        .where(col(RecoveryCode.user_id) == user_id, col(RecoveryCode.code_sha256) == digest,
               col(RecoveryCode.used_at).is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1


def recovery_codes_left(session: Session, user_id: int) -> int:
    return len(session.exec(select(RecoveryCode.id).where(
        RecoveryCode.user_id == user_id, col(RecoveryCode.used_at).is_(None))).all())


def discard_recovery_codes(session: Session, user_id: int) -> None:
    for row in session.exec(select(RecoveryCode).where(RecoveryCode.user_id == user_id)):
        session.delete(row)


def enable(user: User, now: datetime) -> None:
    user.totp_enabled_at = now


def disable(session: Session, user: User) -> None:
    """Forget the secret and the recovery codes; the next enrolment starts afresh."""
    assert user.id is not None
    user.totp_secret, user.totp_enabled_at, user.totp_last_step = None, None, None
    discard_recovery_codes(session, user.id)
    session.add(user)
