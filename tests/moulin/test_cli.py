"""The `moulin` command as an operator uses it, against a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from moulin.cli import app
from school.db import make_engine
from school.devices import device_for_token
from school.models import Device, Pupil, Role, RoleGrant, User
from school.security import verify_password


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MOULIN_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("MOULIN_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None, ok: bool = True):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, list(args), input=stdin, prog_name="moulin")
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke("db", "upgrade")
    invoke("school", "add", "jaures", "--name", "École Jean Jaurès")
    return invoke


@pytest.fixture
def db(tmp_path: Path) -> Session:
    return Session(make_engine(f"sqlite:///{tmp_path / 'cli.db'}"))


def test_every_command_has_help(run) -> None:  # type: ignore[no-untyped-def]
    for cmd in (
        [],
        ["db"],
        ["db", "check"],
        ["user", "add"],
        ["device", "add"],
        ["import", "pupils"],
        ["serve"],
        ["demo"],
        ["camera-node"],
        ["mock", "camera"],
        ["school", "add"],
        ["reader"],
        ["reader", "status"],
        ["mock", "card"],
    ):
        out = run(*cmd, "--help").output
        assert "Usage: moulin" in out


def test_user_add_hashes_the_password_and_grants_roles(run, db: Session) -> None:  # type: ignore[no-untyped-def]
    out = run(
        "user",
        "add",
        "Cantine@Example.org",
        "--role",
        "cashier",
        "--password-stdin",
        stdin="a long enough secret\n",
    ).output
    assert "cantine@example.org added (cashier)" in out
    user = db.exec(select(User)).one()
    assert user.password_hash
    assert user.password_hash.startswith("$argon2")
    assert verify_password("a long enough secret", user.password_hash)
    assert db.exec(select(RoleGrant.role)).all() == [Role.CASHIER]


def test_user_add_refuses_a_duplicate_and_a_short_password(run, db: Session) -> None:  # type: ignore[no-untyped-def]
    run("user", "add", "a@example.org", "--password-stdin", stdin="a long enough secret\n")
    dup = run(
        "user", "add", "A@example.org", "--password-stdin", stdin="another long one\n", ok=False
    )
    assert dup.exit_code == 1
    assert "already exists" in dup.output
    short = run("user", "add", "b@example.org", "--password-stdin", stdin="short\n", ok=False)
    assert short.exit_code == 1
    assert "at least 10 characters" in short.output
    assert len(db.exec(select(User)).all()) == 1


def test_device_token_is_printed_once_and_stored_hashed(run, db: Session) -> None:  # type: ignore[no-untyped-def]
    out = run("device", "add", "till-1").output
    token = out.strip().splitlines()[-1]
    assert len(token) >= 43
    device = db.exec(select(Device)).one()
    assert token not in device.token_sha256
    found = device_for_token(db, token)
    assert found is not None
    assert found.id == device.id
    assert device_for_token(db, token + "x") is None


def test_device_token_file_is_private(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("device", "add", "cam-node", "--kind", "camera_node", "--token-file", str(tmp_path / "tok"))
    assert (tmp_path / "tok").stat().st_mode & 0o777 == 0o600


def test_import_pupils_all_or_nothing(run, db: Session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.csv"
    bad.write_text("pupil_ref,last_name,first_name,class\n1,Martin,Léa,CP\n2,Petit\n")
    result = run("import", "pupils", str(bad), ok=False)
    assert result.exit_code == 1
    assert "line 3: expected 4 fields, found 2" in result.output
    assert "nothing was imported" in result.output
    assert db.exec(select(Pupil)).all() == []
    good = tmp_path / "good.csv"
    good.write_text("pupil_ref,last_name,first_name,class\n1,Martin,Léa,CP\n2,Petit,Hugo,CP\n")
    assert "2 pupils added" in run("import", "pupils", str(good)).output
    assert "0 pupils added, 0 updated, 2 unchanged" in run("import", "pupils", str(good)).output


def test_db_check_passes_then_names_a_problem(run, db: Session) -> None:  # type: ignore[no-untyped-def]
    assert "Database OK" in run("db", "check").output
    run("school", "add", "other", "--name", "Other")
    conn = db.connection()
    conn.exec_driver_sql("INSERT INTO classroom (school_id, name, level) VALUES (2, 'X', '')")
    conn.exec_driver_sql(
        "INSERT INTO pupil (school_id, external_ref, first_name, last_name, classroom_id, "
        "allergies, diet_notes, tariff_band, created_at) "
        "VALUES (1, 'P1', 'A', 'B', 1, '', '', '', '2026-01-01 00:00:00')"
    )
    db.commit()
    result = run("db", "check", ok=False)
    assert result.exit_code == 1
    assert "pupil P1 belongs to school 1 but sits in a class of school 2" in result.output


def test_db_check_names_a_balance_that_disagrees_with_its_postings(run, db: Session) -> None:  # type: ignore[no-untyped-def]
    from cardpay.accounts import pupil_account, school_account
    from cardpay.ledger import post
    from cardpay.models import AccountKind, TransactionKind
    from school.models import School
    from tests import factories

    school = db.exec(select(School)).one()
    pupil = factories.pupil(db, factories.classroom(db, school, "CP"), "Léa", "Martin")
    lunch = pupil_account(session=db, pupil=pupil)
    cash = school_account(session=db, school_id=school.id, kind=AccountKind.CASH_DRAWER)
    post(
        session=db,
        school_id=school.id,
        kind=TransactionKind.TOPUP,
        client_id="t1",
        legs=[(lunch, 2000), (cash, -2000)],
    )
    assert "Database OK" in run("db", "check").output
    db.connection().exec_driver_sql(
        "UPDATE account SET balance_cents = 99 WHERE id = ?", (lunch.id,)
    )
    db.commit()
    result = run("db", "check", ok=False)
    assert result.exit_code == 1
    assert "balance" in result.output


def test_school_add_refuses_a_bad_time_zone(run) -> None:  # type: ignore[no-untyped-def]
    result = run("school", "add", "x", "--name", "X", "--timezone", "Mars/Olympus", ok=False)
    assert result.exit_code == 1
    assert "unknown time zone" in result.output


def test_serve_refuses_an_unmigrated_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOULIN_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 1
    assert "run `moulin db upgrade` first" in " ".join(result.output.split())  # wrapped


def test_production_refuses_a_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOULIN_ENVIRONMENT", "production")
    monkeypatch.setenv("MOULIN_SECRET_KEY", "changeme")
    result = CliRunner().invoke(app, ["db", "check"])
    assert result.exit_code == 1
    assert "MOULIN_SECRET_KEY must be set" in result.output
