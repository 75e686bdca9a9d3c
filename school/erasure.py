"""Erasure of the shared records once their retention period is over (GDPR art. 5(1)(e)):
pupils who left, former guardians, and the traces of signing in.

A pupil is not deleted, because the ledger's history points at them: what identified them
is replaced (a pseudonym 'Pupil #<id>', no birth date, no register reference, no photo, no
allergies or diet notes). Their class and tariff band stay, so that past reports still add
up per class and band; without a name they say nothing about anyone. A former guardian's
user row is kept for the same reason, with a pseudonym and an address that cannot receive
mail, and can no longer sign in.

Nothing here commits: `moulin.purge` runs every package's part in one transaction.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, or_
from sqlmodel import Session, col, select

from school.models import Guardianship, LoginFailure, Pupil, RoleGrant, School, User, WebSession

ERASED_EMAIL_DOMAIN = "invalid"  # reserved (RFC 2606): mail to it goes nowhere


def pupil_pseudonym(pupil_id: int) -> tuple[str, str]:
    """The first and last name an anonymised pupil keeps: 'Pupil', '#123'."""
    return "Pupil", f"#{pupil_id}"


def school_cutoffs(session: Session, now: datetime, days: int) -> dict[int, date]:
    """For each school, the last leaving date still kept: anything before is erased."""
    return {school.id: now.astimezone(ZoneInfo(school.timezone)).date() - timedelta(days=days)
            for school in session.exec(select(School)).all() if school.id is not None}


def pupils_past_retention(session: Session, cutoffs: dict[int, date]) -> list[Pupil]:
    """Pupils who left before their school's cutoff and are not anonymised yet."""
    found: list[Pupil] = []
    for school_id, cutoff in cutoffs.items():
        found.extend(session.exec(
            select(Pupil).where(Pupil.school_id == school_id, col(Pupil.left_on).is_not(None),
                                col(Pupil.left_on) < cutoff, col(Pupil.anonymised_at).is_(None))
            .order_by(col(Pupil.id))
        ).all())
    return found


def anonymise_pupil(session: Session, pupil: Pupil, now: datetime) -> str | None:
    """Replace what identifies the pupil; returns the photo file to delete once the
    transaction has committed (None without one)."""
    assert pupil.id is not None
    photo = pupil.photo_path
    pupil.first_name, pupil.last_name = pupil_pseudonym(pupil.id)
    pupil.external_ref = f"erased-{pupil.id}"
    pupil.birth_date = None
    pupil.photo_path = None
    pupil.allergies = ""
    pupil.diet_notes = ""
    pupil.anonymised_at = now
    session.add(pupil)
    return photo


def guardians_past_retention(session: Session, cutoff: date) -> list[User]:
    """Users with no staff role whose every guardianship ended (or whose child left)
    before `cutoff`, not anonymised yet. A guardian of a child still enrolled, or with
    a guardianship still open, is kept whatever else they had."""
    staff = select(RoleGrant.user_id)
    rows = session.exec(
        select(User, col(Guardianship.ends_on), col(Pupil.left_on))
        .join(Guardianship, col(Guardianship.user_id) == col(User.id))
        .join(Pupil, col(Pupil.id) == col(Guardianship.pupil_id))
        .where(col(User.anonymised_at).is_(None), col(User.id).not_in(staff))
        .order_by(col(User.id))
    ).all()
    ends: dict[int, list[date | None]] = {}
    users: dict[int, User] = {}
    for user, ends_on, left_on in rows:
        assert user.id is not None
        users[user.id] = user
        known = [d for d in (ends_on, left_on) if d is not None]
        ends.setdefault(user.id, []).append(min(known) if known else None)
    return [users[uid] for uid, days in ends.items()
            if all(day is not None and day < cutoff for day in days)]


def anonymise_user(session: Session, user: User, now: datetime) -> str:
    """Erase a former guardian's identity and sign them out; returns the address they
    had, so that other packages can drop what was sent to it."""
    assert user.id is not None
    old_email = user.email
    user.email = f"erased-{user.id}@{ERASED_EMAIL_DOMAIN}"
    user.full_name = f"Guardian #{user.id}"
    user.password_hash = None
    user.locale = None
    user.is_active = False
    user.anonymised_at = now
    session.add(user)
    session.execute(delete(WebSession).where(col(WebSession.user_id) == user.id))
    session.execute(delete(LoginFailure).where(col(LoginFailure.email) == old_email))
    return old_email


def purge_sign_in_traces(session: Session, before: datetime) -> tuple[int, int]:
    """Delete sessions that ended, and failed sign-ins made, before `before`: their
    addresses and browsers are of no use after that. Returns (sessions, failures)."""
    sessions = session.execute(delete(WebSession).where(
        or_(col(WebSession.expires_at) < before, col(WebSession.revoked_at) < before)))
    failures = session.execute(delete(LoginFailure).where(col(LoginFailure.at) < before))
    return sessions.rowcount, failures.rowcount  # type: ignore[attr-defined]


def delete_photo(data_dir: Path, photo_path: str) -> bool:
    """Delete a pupil's photo file if it lies inside the data folder; True if deleted."""
    root = data_dir.resolve()
    path = (root / photo_path).resolve()
    if root not in path.parents or not path.is_file():
        return False
    path.unlink()
    return True

