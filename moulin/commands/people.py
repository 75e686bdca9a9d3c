"""`moulin school add`, `moulin user add` and `moulin user reset-totp`: set up a school and
its staff, and let one back in who lost their second factor."""

from __future__ import annotations

import sys
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from sqlmodel import Session

from moulin import context
from parent_portal.credentials import end_pending_logins, end_sessions
from school import audit, totp
from school.clock import utcnow
from school.errors import SchoolError
from school.models import Role, School
from school.people import create_user, get_user_by_email, grant_role

school_app = typer.Typer(help="Schools.", no_args_is_help=True)
user_app = typer.Typer(help="Users: staff and parents.", no_args_is_help=True)


@school_app.command("add")
def school_add(
    slug: str = typer.Argument(..., help="Short name used in commands and URLs, e.g. 'jaures'."),
    name: str = typer.Option(..., "--name", help="The school's full name."),
    timezone: str = typer.Option("Europe/Paris", help="IANA time zone of the school."),
    currency: str = typer.Option("EUR", help="ISO 4217 currency code."),
    locale: str = typer.Option("fr", help="Default language: fr or en."),
) -> None:
    """Add a school."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        context.fail(f"unknown time zone {timezone!r} (e.g. Europe/Paris)")
    if locale not in ("fr", "en"):
        context.fail("locale must be fr or en")
    with context.database() as eng, Session(eng) as session:
        record = School(
            slug=slug, name=name, timezone=timezone, currency=currency.upper(), locale=locale
        )
        session.add(record)
        session.flush()
        audit.record(
            session,
            action="school.add",
            school_id=record.id,
            target_type="school",
            target_id=record.id or "",
            slug=slug,
        )
        try:
            session.commit()
        except Exception as exc:
            context.fail(
                f"could not add school {slug!r}: it probably exists ({exc.__class__.__name__})"
            )
    context.console.print(f"School {slug!r} added.")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_app.command("add")
def user_add(
    email: str = typer.Argument(..., help="The user's e-mail address; it is their login."),
    name: str = typer.Option("", "--name", help="Full name."),
    role: list[Role] = typer.Option([], "--role", help="Staff role; repeat for several."),
    school_slug: str | None = typer.Option(
        None, "--school", help="School slug (default: the first)."
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from stdin."
    ),
) -> None:
    """Add a user; asks for their password (or reads it from stdin)."""
    password = _read_password(password_stdin)
    with context.database() as eng, Session(eng) as session:
        try:
            user = create_user(session=session, email=email, full_name=name, password=password)
            if role:
                where = context.school(session, school_slug)
                for r in role:
                    grant_role(session=session, user=user, school=where, role=r)
            audit.record(
                session,
                action="user.add",
                target_type="user",
                target_id=user.id or "",
                roles=[r.value for r in role],
            )
            session.commit()
            added = user.email
        except SchoolError as exc:
            context.fail(str(exc))
    roles = ", ".join(r.value for r in role) or "no staff role"
    context.console.print(f"User {added} added ({roles}).", highlight=False)


@user_app.command("reset-totp")
def user_reset_totp(
    email: str = typer.Argument(..., help="The user's e-mail address."),
) -> None:
    """Turn off a user's two-step verification, for one who lost their phone and their
    recovery codes: the secret and the codes are forgotten and every session of theirs
    ends. Where the rule requires it, they set it up again at their next sign-in."""
    with context.database() as eng, Session(eng) as session:
        user = get_user_by_email(session, email)
        if user is None or user.id is None:
            context.fail(f"No user {email}.")
        if user.totp_secret is None:
            context.fail(f"{user.email} has no two-step verification to turn off.")
        now = utcnow()
        totp.disable(session, user)
        end_sessions(session=session, user_id=user.id, now=now)
        end_pending_logins(session=session, user_id=user.id, now=now)
        audit.record(session, action="user.totp_reset", target_type="user",
                     target_id=user.id, via="command line")
        session.commit()
        reset = user.email
    context.console.print(
        f"Two-step verification turned off for {reset}; their sessions have ended.",
        highlight=False)
