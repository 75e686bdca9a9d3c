"""The rules a new password must pass, wherever it is set (sign-up by the CLI, change,
reset): long enough, not one of the commonly used passwords, not built on the e-mail.

The list of common passwords ships with the package (`data/common-passwords.txt.gz`; its
header says where it comes from) and is read once per process.
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

from school.errors import InvalidInput

MIN_PASSWORD_LENGTH = 10
# The shortest e-mail local part looked for inside a password: a one- or two-letter
# part ('a@…') would refuse half of all passwords and protect nothing.
MIN_LOCAL_PART = 3
COMMON_PASSWORDS = Path(__file__).parent / "data" / "common-passwords.txt.gz"


class WeakPassword(InvalidInput):
    """A password refused by the rules; `reason` is 'too_short', 'common' or 'email'."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@cache
def common_passwords() -> frozenset[str]:
    """The common passwords, lower-cased. The file's header ends at its first empty line."""
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    return frozenset(lines[lines.index("") + 1:])


def check_password(password: str, *, email: str = "") -> None:
    """Raise WeakPassword if `password` may not be used by the owner of `email`."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword("too_short",
                           f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip().lower() in common_passwords():
        raise WeakPassword("common", "this password is one of the most commonly used")
    local_part = email.strip().lower().partition("@")[0]
    if len(local_part) >= MIN_LOCAL_PART and local_part in password.lower():
        raise WeakPassword("email", "a password must not contain the e-mail address")
