"""A school's own settings that are not about the canteen: for now its time zone."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from sqlmodel import Session

from school import audit
from school.errors import InvalidInput
from school.models import School


@cache
def time_zones() -> tuple[str, ...]:
    """The IANA zone names this machine knows, sorted; read once."""
    return tuple(sorted(available_timezones()))


def check_timezone(name: str) -> str:
    name = name.strip()
    # Membership rather than ZoneInfo(name): ZoneInfo also opens odd paths and 'localtime'.
    if name not in time_zones():
        raise InvalidInput(f"unknown time zone {name[:64]!r} (e.g. Europe/Paris)")
    return name


def set_timezone(*, session: Session, school: School, timezone: str, actor_user_id: int,
                 ip: str | None = None) -> bool:
    """Change the school's time zone, which decides 'today' for meals, schedules and
    reports; audited with the old and new values. Returns whether it changed."""
    timezone = check_timezone(timezone)
    if timezone == school.timezone:
        return False
    before, school.timezone = school.timezone, timezone
    session.add(school)
    audit.record(session, action="school.timezone", school_id=school.id,
                 actor_user_id=actor_user_id, target_type="school", target_id=school.id or "",
                 ip=ip, before=before, after=timezone)
    return True
