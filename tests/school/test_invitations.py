"""Invitation links: signed, bound to the account as it is, single-use, expiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from school import invitations
from school.invitations import InvitationInvalid
from school.people import create_user
from tests import factories

SECRET = "s" * 40
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture
def invited(session: Session) -> tuple[int, str]:
    school = factories.school(session)
    user = create_user(session=session, email="new@example.org", full_name="New")
    session.commit()
    assert user.id is not None
    assert school.id is not None
    return user.id, invitations.make_token(secret=SECRET, user=user, school_id=school.id,
                                           now=NOW)


def test_a_fresh_token_names_its_user_and_school(session: Session,
                                                 invited: tuple[int, str]) -> None:
    user_id, token = invited
    found = invitations.check_token(session, secret=SECRET, token=token, now=NOW)
    assert found.user_id == user_id
    assert found.school_id == 1


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2],
    lambda t: t.replace(".", "-", 1),
    lambda t: "",
    lambda t: "1.1.99999999999.abc",
])
def test_a_mangled_token_is_refused(session: Session, invited: tuple[int, str],
                                    mangle: object) -> None:
    _, token = invited
    with pytest.raises(InvitationInvalid):
        invitations.check_token(session, secret=SECRET, token=mangle(token),  # type: ignore[operator]
                                now=NOW)


def test_another_secret_or_a_late_visit_is_refused(session: Session,
                                                   invited: tuple[int, str]) -> None:
    _, token = invited
    with pytest.raises(InvitationInvalid):
        invitations.check_token(session, secret="x" * 40, token=token, now=NOW)
    with pytest.raises(InvitationInvalid):
        invitations.check_token(session, secret=SECRET, token=token,
                                now=NOW + timedelta(days=invitations.INVITATION_DAYS, seconds=1))


def test_a_token_works_once(session: Session, invited: tuple[int, str]) -> None:
    _user_id, token = invited
    invitations.accept(session=session, secret=SECRET, token=token, password_hash="h1", now=NOW)
    session.commit()
    with pytest.raises(InvitationInvalid):
        invitations.accept(session=session, secret=SECRET, token=token, password_hash="h2",
                           now=NOW)


def test_changing_the_email_or_deactivating_voids_the_token(
    session: Session, invited: tuple[int, str]
) -> None:
    from school.models import User

    user_id, token = invited
    user = session.get(User, user_id)
    assert user is not None
    user.email = "other@example.org"
    with pytest.raises(InvitationInvalid):
        invitations.check_token(session, secret=SECRET, token=token, now=NOW)
    user.email, user.is_active = "new@example.org", False
    with pytest.raises(InvitationInvalid):
        invitations.check_token(session, secret=SECRET, token=token, now=NOW)
    user.is_active = True
    invitations.check_token(session, secret=SECRET, token=token, now=NOW)
