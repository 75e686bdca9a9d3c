"""Audit rows written from pages that otherwise only read."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from parent_portal.deps import get_engine
from school import audit
from school.db import immediate_session


def record_now(request: Request, **fields: Any) -> None:
    """Write one audit event in a short transaction of its own, so that a GET request's
    read-only session never has to upgrade to a write (see parent_portal.deps.get_db)."""
    with immediate_session(get_engine(request)) as session:
        audit.record(session, **fields)
        session.commit()
