"""Password hashing (argon2 through passlib) and device and session tokens.

Kept in one module so that swapping the hashing library stays a small change.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from passlib.context import CryptContext

_passwords = CryptContext(schemes=["argon2"], deprecated="auto")

# Compared against when the e-mail is unknown, so that a wrong e-mail costs as much time
# as a wrong password and does not reveal who has an account.
_DUMMY_HASH = _passwords.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return str(_passwords.hash(password))


def verify_password(password: str, password_hash: str | None) -> bool:
    if not password_hash:
        _passwords.verify(password, _DUMMY_HASH)
        return False
    return bool(_passwords.verify(password, password_hash))


def new_token() -> str:
    """A random 256-bit token, URL-safe."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """SHA-256 of a high-entropy token: fast enough for every tap, safe for random input."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
