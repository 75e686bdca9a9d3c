"""`moulin people purge` and `moulin gdpr register` as an operator runs them, against a
real SQLite file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from cardpay import cards
from cardpay.models import Card, CardKind
from moulin.cli import app
from school.db import make_engine
from school.models import AuditEvent, Classroom, Pupil, School
from webcam.models import Camera


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MOULIN_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("MOULIN_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("MOULIN_PAYMENT_PROVIDER", "none")
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, list(args), prog_name="moulin")
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke("db", "upgrade")
    invoke("school", "add", "jaures", "--name", "École Jean Jaurès")
    return invoke


@pytest.fixture
def db(tmp_path: Path) -> Session:
    return Session(make_engine(f"sqlite:///{tmp_path / 'cli.db'}"))


def _room(db: Session) -> Classroom:
    school = db.exec(select(School)).one()
    room = Classroom(school_id=school.id, name="CP")  # type: ignore[arg-type]
    db.add(room)
    db.commit()
    return room


def test_help(run) -> None:  # type: ignore[no-untyped-def]
    for cmd in (["people"], ["people", "purge"], ["gdpr"], ["gdpr", "register"]):
        assert "Usage: moulin" in run(*cmd, "--help").output


def test_purge_dry_run_then_for_real_then_nothing_more(run, db: Session) -> None:  # type: ignore[no-untyped-def]
    room = _room(db)
    gone = Pupil(school_id=room.school_id, classroom_id=room.id, external_ref="r1",
                 first_name="Léa", last_name="Martin", allergies="arachide",
                 left_on=date(2020, 7, 4))
    here = Pupil(school_id=room.school_id, classroom_id=room.id, external_ref="r2",
                 first_name="Hugo", last_name="Bernard")
    db.add_all([gone, here])
    db.commit()
    cards.issue_card(session=db, pupil=gone, uid="04A1B2C3", kind=CardKind.UID)
    dry = run("people", "purge", "--dry-run").output
    assert "Dry run: nothing was changed." in dry
    db.rollback()  # a fresh read after the command
    assert db.get(Pupil, gone.id).first_name == "Léa"  # type: ignore[union-attr]
    done = run("people", "purge").output
    assert "record(s) erased" in done
    db.rollback()  # a fresh read after the command
    pupil = db.get(Pupil, gone.id)
    assert pupil is not None
    assert (pupil.full_name, pupil.allergies) == (f"Pupil #{gone.id}", "")
    assert db.exec(select(Card.uid)).one().startswith("~")
    assert db.get(Pupil, here.id).first_name == "Hugo"  # type: ignore[union-attr]
    assert "Database OK." in run("db", "check").output
    assert "0 record(s) erased" in run("people", "purge").output
    db.rollback()
    purges = db.exec(select(AuditEvent.detail).where(AuditEvent.action == "people.purge")).all()
    assert [d["pupils"] for d in purges] == [1, 0]


def test_the_register_follows_the_configuration(  # type: ignore[no-untyped-def]
    run, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = run("gdpr", "register", "--lang", "en").output
    assert plain.startswith("# Register of processing activities")
    assert "**Controller:** École Jean Jaurès" in plain
    assert "not in use: no payment provider configured" in plain
    assert "not in use: no SMTP server configured" in plain
    assert "not in use: no camera installed" in plain
    assert "Until the pupil leaves, then 365 days" in plain
    assert "Viewing log" not in plain
    monkeypatch.setenv("MOULIN_SMTP_HOST", "mail.example.org")
    monkeypatch.setenv("MOULIN_SMTP_STARTTLS", "true")
    monkeypatch.setenv("MOULIN_PAYMENT_PROVIDER", "stripe")
    monkeypatch.setenv("MOULIN_STRIPE_API_KEY", "sk_test_x")
    monkeypatch.setenv("MOULIN_STRIPE_WEBHOOK_SECRET", "whsec_x")
    monkeypatch.setenv("MOULIN_PERSONAL_DATA_RETENTION_DAYS", "400")
    monkeypatch.setenv("MOULIN_CAMERA_VIEW_RETENTION_DAYS", "90")
    monkeypatch.setenv("MOULIN_GDPR_DPO_CONTACT", "dpo@ville.example.org")
    room = _room(db)
    db.add(Camera(school_id=room.school_id, classroom_id=room.id, name="CP",  # type: ignore[arg-type]
                  source_sealed="x"))
    db.commit()
    full = run("gdpr", "register", "--lang", "en").output
    assert "## 2. Online payments (stripe)" in full
    assert "Stripe Payments Europe Ltd (Ireland)" in full
    assert "Stripe, Inc. (United States)" in full
    assert "The mail server mail.example.org:25 (STARTTLS)" in full
    assert "Sent messages deleted 400 days after sending" in full
    assert "Until the pupil leaves, then 400 days" in full
    assert "Viewing log: 90 days" in full
    assert "1 camera(s); 1 captured by the server, 0 by camera nodes." in full
    assert "**Data protection officer:** dpo@ville.example.org" in full
    assert "sk_test_x" not in full
    assert "whsec_x" not in full
    french = run("gdpr", "register").output  # the deployment's default language: French
    assert french.startswith("# Registre des activités de traitement")
    assert "Journal de visionnage : 90 jours" in french
