"""Administration: the school's audit log, newest first, filtered and paged. Read-only.

Dates are the school's calendar days; rows are kept in UTC. A school's log holds the rows
written for that school, and, on a deployment with a single school, the rows that name
no school (sign-ins, refused visits), which then can only be about it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from sqlalchemy import ColumnElement, and_, func, or_
from sqlmodel import Session, col, select
from starlette.responses import Response

from parent_portal.admin_access import AdminDep
from parent_portal.deps import SessionDep
from parent_portal.money_view import Formats
from parent_portal.templating import render
from school.models import AuditEvent, School, User

router = APIRouter()
PAGE_SIZE = 50
MAX_FILTER = 254


@dataclass(frozen=True)
class Filters:
    start: str = ""
    end: str = ""
    actor: str = ""
    action: str = ""
    target_type: str = ""

    def query(self, page: int) -> str:
        fields = {"from": self.start, "to": self.end, "actor": self.actor,
                  "action": self.action, "target_type": self.target_type}
        return urlencode({**{k: v for k, v in fields.items() if v}, "page": page})


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def _local_midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _conditions(session: Session, school: School, f: Filters) -> list[ColumnElement[bool]]:
    """SQL conditions for the filters; ValueError for a date that is not one."""
    only_school = session.exec(select(func.count()).select_from(School)).one() == 1
    mine = col(AuditEvent.school_id) == school.id
    if only_school:
        mine = or_(mine, col(AuditEvent.school_id).is_(None))
    where = [mine]
    start, end = _day(f.start), _day(f.end)
    if start is not None:
        where.append(col(AuditEvent.at) >= _local_midnight(start, school.timezone))
    if end is not None:
        where.append(col(AuditEvent.at) < _local_midnight(end + timedelta(days=1),
                                                           school.timezone))
    if f.actor:
        where.append(func.lower(col(User.email)).contains(f.actor.lower(), autoescape=True))
    if f.action:
        where.append(or_(col(AuditEvent.action) == f.action,
                         col(AuditEvent.action).startswith(f.action + ".", autoescape=True)))
    if f.target_type:
        where.append(col(AuditEvent.target_type) == f.target_type)
    return where


def _detail(event: AuditEvent) -> str:
    return json.dumps(event.detail, ensure_ascii=False, sort_keys=True) if event.detail else ""


def _choices(session: Session, school_id: int, column: Any) -> list[str]:
    rows = session.exec(select(column).where(AuditEvent.school_id == school_id)
                        .distinct().order_by(column)).all()
    return [r for r in rows if r]


@router.get("/admin/schools/{school_id}/audit")
def audit_page(request: Request, admin: AdminDep, session: SessionDep, page: int = 1) -> Response:
    q = request.query_params
    f = Filters(*(q.get(k, "").strip()[:MAX_FILTER]
                  for k in ("from", "to", "actor", "action", "target_type")))
    page = max(page, 1)
    context: dict[str, Any] = {
        "school": admin.school, "tab": "audit", "filters": f, "page": page, "rows": [],
        "newer": "", "older": "", "error": False, "fmt": Formats.of(request, admin.school),
        "actions": _choices(session, admin.school_id, AuditEvent.action),
        "target_types": _choices(session, admin.school_id, AuditEvent.target_type),
    }
    try:
        where = _conditions(session, admin.school, f)
    except ValueError:
        context["error"] = True
        return render(request, "admin_audit.html", context, status_code=400)
    rows = session.exec(
        select(AuditEvent, User.email, User.full_name)
        .outerjoin(User, col(User.id) == col(AuditEvent.actor_user_id))
        .where(and_(*where))
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
    ).all()
    context["rows"] = [{"event": e, "email": email or "", "name": name or "",
                        "detail": _detail(e)} for e, email, name in rows[:PAGE_SIZE]]
    if page > 1:
        context["newer"] = "?" + f.query(page - 1)
    if len(rows) > PAGE_SIZE:
        context["older"] = "?" + f.query(page + 1)
    return render(request, "admin_audit.html", context)
