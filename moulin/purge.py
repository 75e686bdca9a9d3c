"""`moulin people purge`: erase the personal data whose retention period is over, in one
database transaction, and audit how much was erased (counts only, never who).

- pupils who left more than `personal_data_retention_days` ago: anonymised
  (school.erasure), their cards, taps, limits and alerts erased (cardpay.erasure);
- former guardians without staff role whose every child left or guardianship ended as
  long ago: anonymised and unable to sign in, with the e-mails sent to them;
- e-mails, sessions and failed sign-ins older than that period;
- the camera viewing log older than `camera_view_retention_days` (webcam.erasure).

The ledger is untouched, so every balance and total stays the same. A second run finds
nothing more to do. A dry run does the same work and rolls it back.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from cardpay import erasure as cardpay_erasure
from school import audit
from school import erasure as school_erasure
from school.db import immediate_session
from school.settings import Settings
from webcam import erasure as webcam_erasure

logger = logging.getLogger(__name__)


@dataclass
class PurgeReport:
    """How many records each kind of erasure touched; `cardpay` counts the pupils' cards,
    taps, limits, alerts, e-mails and receipts (cardpay.erasure)."""

    pupils: int = 0
    guardians: int = 0
    cardpay: cardpay_erasure.CardpayErased = field(
        default_factory=cardpay_erasure.CardpayErased)
    photos: int = 0
    web_sessions: int = 0
    login_failures: int = 0
    camera_views: int = 0
    camera_consents: int = 0

    def counts(self) -> dict[str, Any]:
        """Every count by name, flat, in the order above."""
        counts: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            counts.update(asdict(value) if f.name == "cardpay" else {f.name: value})
        return counts

    @property
    def total(self) -> int:
        return sum(self.counts().values())


def purge(engine: Engine, settings: Settings, *, now: datetime,
          dry_run: bool = False) -> PurgeReport:
    """Erase what is past its retention at `now`; with `dry_run`, only count it."""
    days = settings.personal_data_retention_days
    before = now - timedelta(days=days)
    report = PurgeReport()
    photos: list[str] = []
    with immediate_session(engine) as session:
        money = report.cardpay
        cutoffs = school_erasure.school_cutoffs(session, now, days)
        for pupil in school_erasure.pupils_past_retention(session, cutoffs):
            photo = school_erasure.anonymise_pupil(session, pupil, now)
            photos.extend([photo] if photo else [])
            cardpay_erasure.erase_pupil(session, pupil, now=now, counts=money)
            report.pupils += 1
        today = now.astimezone(ZoneInfo(settings.default_timezone)).date()
        guardians = school_erasure.guardians_past_retention(session, today - timedelta(days=days))
        for user in guardians:
            address = school_erasure.anonymise_user(session, user, now)
            cardpay_erasure.erase_mail_to(session, user_id=user.id or 0, address=address,
                                          counts=money)
        report.guardians = len(guardians)
        cardpay_erasure.purge_old_mail(session, before, money)
        report.web_sessions, report.login_failures = \
            school_erasure.purge_sign_in_traces(session, before)
        ids = [user.id for user in guardians if user.id is not None]
        report.camera_views = webcam_erasure.purge_views(
            session, before=now - timedelta(days=settings.camera_view_retention_days),
            user_ids=ids)
        report.camera_consents = webcam_erasure.purge_consents(session, ids)
        report.photos = len(photos)
        if dry_run:
            session.rollback()
            return report
        audit.record(session, action="people.purge", target_type="retention",
                     target_id=days, **report.counts())
        session.commit()
    report.photos = sum(school_erasure.delete_photo(settings.data_dir, p) for p in photos)
    logger.info("purge erased %s records", report.total)
    return report
