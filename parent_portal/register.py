"""The register of processing activities (GDPR art. 30), drawn up from the settings and the
database each time it is read: which processing is in use (online payments only with a
provider, e-mail only with an SMTP host, cameras only if one exists), who receives what,
how long it is kept (the retention settings) and where it runs. Shown to office and admin
staff at /staff/gdpr/register and printed as Markdown by `moulin gdpr register`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from cardpay.models import Card, CardStatus
from parent_portal.register_texts import TEXTS
from school.models import AuditEvent, Device, DeviceKind, Pupil, School
from school.settings import Settings
from webcam.models import Camera

STRIPE_API = "https://api.stripe.com"
FIELDS = ("purpose", "basis", "subjects", "data", "recipients", "retention", "where",
          "transfers")


@dataclass(frozen=True)
class Processing:
    key: str
    name: str
    active: bool
    why_not: str = ""
    facts: dict[str, str] = field(default_factory=dict)  # FIELDS -> text


@dataclass(frozen=True)
class Register:
    lang: str
    controller: str
    dpo: str
    generated: str
    processings: list[Processing]

    def label(self, key: str) -> str:
        return TEXTS[self.lang][key]


def _count(session: Session, query: object) -> int:
    return int(session.exec(query).one())  # type: ignore[call-overload]


def _where(settings: Settings, t: dict[str, str]) -> str:
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite":
        base = t["where.sqlite"].format(path=url.database or "")
    else:  # never the user name or password
        host = url.host or url.query.get("host") or "localhost"
        base = t["where.postgresql"].format(db=url.database or "", host=host)
    parts = [base, t["where.data_dir"].format(path=settings.data_dir.resolve()),
             t["where.https" if settings.https else "where.http"]]
    return "; ".join(str(p) for p in parts) + "."


def build(session: Session, settings: Settings, *, lang: str, now: datetime,
          school_ids: set[int] | None = None) -> Register:
    """The register; for a school's staff (`school_ids`), of their schools only: another
    school's name and figures are not theirs to read. The operator's CLI sees them all."""
    t = TEXTS[lang if lang in TEXTS else "en"]
    days, where = settings.personal_data_retention_days, _where(settings, t)

    def mine(query: Any, school_id: Any) -> Any:
        return query if school_ids is None else query.where(col(school_id).in_(school_ids))

    schools = session.exec(mine(select(School), School.id).order_by(col(School.id))).all()
    zone = schools[0].timezone if schools else settings.default_timezone
    facts: dict[str, object] = {
        "days": days, "view_days": settings.camera_view_retention_days,
        "pupils": _count(session, mine(select(func.count(col(Pupil.id))), Pupil.school_id)
                         .where(col(Pupil.left_on).is_(None))),
        "cards": _count(session, mine(select(func.count(col(Card.id)))
                                      .join(Pupil, col(Pupil.id) == col(Card.pupil_id)),
                                      Pupil.school_id)
                        .where(Card.status == CardStatus.ACTIVE)),
        "tills": _count(session, mine(select(func.count(col(Device.id))), Device.school_id)
                        .where(Device.kind == DeviceKind.TILL, col(Device.revoked_at).is_(None))),
        "events": _count(session, mine(select(func.count(col(AuditEvent.id))),
                                       AuditEvent.school_id)),
    }
    processings = [
        _simple("canteen", t, facts, where),
        _payments(settings, t, facts, where),
        _email(settings, t, facts, where),
        _cameras(session, t, facts, where, school_ids),
        _simple("audit", t, facts, where),
        _backups(settings, t, facts),
    ]
    controller = settings.gdpr_controller or ", ".join(s.name for s in schools) \
        or t["controller.none"]
    when = now.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
    return Register(lang=lang if lang in TEXTS else "en", controller=controller,
                    dpo=settings.gdpr_dpo_contact or t["dpo.none"],
                    generated=t["generated"].format(when=when), processings=processings)


def _texts(key: str, t: dict[str, str], facts: dict[str, object], **more: str) -> dict[str, str]:
    out = {f: more.get(f) or t[f"{key}.{f}"].format(**facts) for f in FIELDS
           if f in more or f"{key}.{f}" in t}
    out.setdefault("transfers", t["transfers.none"])
    return out


def _simple(key: str, t: dict[str, str], facts: dict[str, object], where: str) -> Processing:
    return Processing(key, t[f"{key}.name"], True, facts=_texts(key, t, facts, where=where))


def _payments(settings: Settings, t: dict[str, str], facts: dict[str, object],
              where: str) -> Processing:
    provider = settings.effective_payment_provider
    name = t["payments.name"].format(provider=provider)
    if provider == "none":
        return Processing("payments", name, False, why_not=t["payments.off"])
    api = settings.stripe_api_base or STRIPE_API
    more = {"where": where, "recipients": t[f"payments.recipients.{provider}"].format(api=api)}
    if provider == "stripe":
        more["transfers"] = t["payments.transfers.stripe"]
    return Processing("payments", name, True, facts=_texts("payments", t, facts, **more))


def _email(settings: Settings, t: dict[str, str], facts: dict[str, object],
           where: str) -> Processing:
    if not settings.smtp_host:
        return Processing("email", t["email.name"], False, why_not=t["email.off"])
    tls = t["email.tls.on" if settings.smtp_starttls else "email.tls.off"]
    recipients = t["email.recipients"].format(host=settings.smtp_host, port=settings.smtp_port,
                                              tls=tls, sender=settings.smtp_from)
    return Processing("email", t["email.name"], True,
                      facts=_texts("email", t, facts, where=where, recipients=recipients))


def _cameras(session: Session, t: dict[str, str], facts: dict[str, object],
             where: str, school_ids: set[int] | None) -> Processing:
    query = select(Camera)
    if school_ids is not None:
        query = query.where(col(Camera.school_id).in_(school_ids))
    cameras = session.exec(query).all()
    if not cameras:
        return Processing("cameras", t["cameras.name"], False, why_not=t["cameras.off"])
    nodes = sum(1 for c in cameras if c.node_device_id is not None)
    rooms = len({c.classroom_id for c in cameras})
    local = t["cameras.where"].format(cameras=len(cameras), local=len(cameras) - nodes,
                                      nodes=nodes)
    return Processing("cameras", t["cameras.name"], True, facts=_texts(
        "cameras", t, {**facts, "rooms": rooms}, where=f"{local} {where}"))


def _backups(settings: Settings, t: dict[str, str], facts: dict[str, object]) -> Processing:
    engine = make_url(settings.effective_database_url).get_backend_name()
    return Processing("backups", t["backups.name"], True, facts=_texts(
        "backups", t, {**facts, "engine": "pg_dump" if engine != "sqlite" else "SQLite"}))


def markdown(register: Register) -> str:
    """The register as a Markdown document."""
    lines = [f"# {register.label('title')}", "",
             f"- **{register.label('controller')}:** {register.controller}",
             f"- **{register.label('dpo')}:** {register.dpo}", "", register.generated]
    for number, item in enumerate(register.processings, start=1):
        lines += ["", f"## {number}. {item.name}", ""]
        if not item.active:
            lines.append(register.label("inactive").format(why=item.why_not))
            continue
        lines += [f"- **{register.label(f)}:** {item.facts[f]}" for f in FIELDS
                  if f in item.facts]
    return "\n".join(lines) + "\n"
