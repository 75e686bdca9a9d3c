"""Helpers for the administration page tests: the pages, and the audit rows they write."""

from __future__ import annotations

from sqlmodel import Session, col, select

from school.models import AuditEvent, School

PAGES = ("users", "devices", "settings", "audit")


def page_url(school: School, page: str) -> str:
    return f"/admin/schools/{school.id}/{page}"


def audit_rows(session: Session, action: str) -> list[AuditEvent]:
    """The committed audit rows of one action, oldest first."""
    session.rollback()  # see what the server committed since this session last read
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)
                             .order_by(col(AuditEvent.id))).all())
