"""Erasure of what the cameras keep about people: the viewing log past its retention
(`camera_view_retention_days`), and the views and consents of former guardians whose
identity is erased. Images are never kept (PRIVACY.md 5), so there are none to erase.

Nothing here commits: `moulin.purge` runs every package's part in one transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, or_
from sqlmodel import Session, col

from webcam.models import CameraConsent, CameraView


def purge_views(session: Session, *, before: datetime, user_ids: Collection[int]) -> int:
    """Delete viewings started before `before`, and every viewing by `user_ids`."""
    result = session.execute(delete(CameraView).where(
        or_(col(CameraView.started_at) < before, col(CameraView.user_id).in_(user_ids))))
    return int(result.rowcount)  # type: ignore[attr-defined]


def purge_consents(session: Session, user_ids: Collection[int]) -> int:
    """Delete the consents given by `user_ids`: their children have long left the room,
    and the filing reference may name them."""
    if not user_ids:
        return 0
    result = session.execute(delete(CameraConsent).where(col(CameraConsent.user_id).in_(user_ids)))
    return int(result.rowcount)  # type: ignore[attr-defined]
