"""`moulin card provision` and `moulin card reset` through pcscd and vpcd, with a blank
NTAG 424 DNA mock on the reader, as the office runs them at the start of the year."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from cardpay import cards
from cardpay.errors import SunReplayedError
from cardpay.models import Card, CardKind
from cardpay.sun import Keyring, SunMessage
from firmware_mocks.ntag424_chip import Chip
from firmware_mocks.vpcd_card import Kind, VirtualCard
from hardware.readers import open_reader
from moulin.cli import app
from school.settings import Settings
from tests.factories import SmallSchool
from tests.hardware.pcscd import Pcscd

runner = CliRunner()
MASTER = "00112233445566778899AABBCCDDEEFF"
UID = bytes.fromhex("04C0FFEE123456")


@pytest.fixture
def office(monkeypatch: pytest.MonkeyPatch, settings: Settings, small_school: SmallSchool,
           pcscd: Pcscd) -> Pcscd:
    for name, value in {
        "MOULIN_ENVIRONMENT": "test", "MOULIN_SECRET_KEY": "t" * 40,
        "MOULIN_DATA_DIR": str(settings.data_dir),
        "MOULIN_DATABASE_URL": settings.effective_database_url,
        "MOULIN_CARD_MASTER_KEY": MASTER,
    }.items():
        monkeypatch.setenv(name, value)
    pcscd.wait_until_empty()
    return pcscd


def _provision(*extra: str, wait: int = 10) -> tuple[int, str]:
    result = runner.invoke(app, ["card", "provision", "--device", "pcsc:Virtual PCD",
                                 "--wait", str(wait), *extra])
    return result.exit_code, result.output


def _sun_read(card: VirtualCard) -> str:
    reader = open_reader("pcsc:Virtual PCD")
    tap = card.tap_in_background(2500, until_apdus=12)
    try:
        read = reader.wait_for_card(10)
    finally:
        reader.close()
    tap.result(15)
    assert read is not None
    assert read.sun_url is not None
    return read.sun_url


def test_a_blank_card_is_personalised_linked_and_taps_as_genuine_once(
    office: Pcscd, session: Session, small_school: SmallSchool
) -> None:
    chip = Chip(uid=UID)
    card = VirtualCard(Kind.NTAG424_DNA, UID, port=office.port, chip=chip)
    tap = card.tap_in_background(8000, until_apdus=60)
    pupil = small_school.pupils[0]
    code, output = _provision("--pupil", pupil.external_ref)
    tap.result(15)
    assert code == 0, output
    assert "personalised, key version 1" in output
    assert "first message genuine (counter 1), linked to Léa Martin" in output
    assert chip.versions == [1] * 5
    assert chip.keys == list(Keyring(bytes.fromhex(MASTER)).card_keys(UID, 1).keys)
    session.rollback()  # end the read transaction begun before the command wrote
    record = session.exec(select(Card).where(Card.uid == UID.hex().upper())).one()
    assert (record.kind, record.key_version, record.pupil_id) == (CardKind.NTAG424, 1, pupil.id)

    office.wait_until_empty()
    url = _sun_read(card)
    keyring = Keyring(bytes.fromhex(MASTER))
    found = cards.identify_sun(session=session, message=SunMessage.from_url(url),
                               keyring=keyring)
    assert found.id == record.id
    session.commit()
    with pytest.raises(SunReplayedError):  # the same message again: a copy
        cards.identify_sun(session=session, message=SunMessage.from_url(url), keyring=keyring)


def test_a_card_with_unknown_keys_is_refused_after_one_failed_authentication(
    office: Pcscd,
) -> None:
    chip = Chip(uid=UID, keys=[b"\x5a" * 16] * 5, versions=[1] * 5)
    card = VirtualCard(Kind.NTAG424_DNA, UID, port=office.port, chip=chip)
    tap = card.tap_in_background(8000, until_apdus=30)
    code, output = _provision("--batch", "--count", "1")
    tap.result(15)
    assert code == 1
    assert "refused: key 0 of this card (version 1) is not the one Moulin derives" in output
    assert chip.failed_authentications == 1
    assert chip.keys == [b"\x5a" * 16] * 5


def test_mock_card_blank_and_provision_batch_then_reset(office: Pcscd, tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    moulin = [sys.executable, "-m", "moulin.cli"]
    uid = UID.hex().upper()
    mock = subprocess.Popen([*moulin, "mock", "card", "--kind", "ntag424-blank", "--uid", uid,
                             "--port", str(office.port), "--fresh"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    code, output = _provision("--batch", "--count", "1", wait=40)  # the mock starts slowly
    mock_output, _ = mock.communicate(timeout=30)
    assert mock.returncode == 0, mock_output
    assert code == 0, output
    assert f"{uid[:2]}…{uid[-2:]}/7: personalised, key version 1" in output
    assert "key versions [1, 1, 1, 1, 1], SDM on" in mock_output
    assert "failed authentications 0" in mock_output

    office.wait_until_empty()
    mock = subprocess.Popen([*moulin, "mock", "card", "--kind", "ntag424-blank", "--uid", uid,
                             "--port", str(office.port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    result = runner.invoke(app, ["card", "reset", "--device", "pcsc:Virtual PCD", "--wait", "40"])
    mock_output, _ = mock.communicate(timeout=30)
    assert result.exit_code == 0, result.output
    assert "factory keys again" in result.output
    assert "key versions [0, 0, 0, 0, 0], SDM off" in mock_output


def test_a_card_lifted_mid_way_is_reported_and_finished_by_the_next_attempt(
    office: Pcscd, session: Session, small_school: SmallSchool
) -> None:
    chip = Chip(uid=UID)
    card = VirtualCard(Kind.NTAG424_DNA, UID, port=office.port, chip=chip)
    tap = card.tap_in_background(8000, until_apdus=18)  # gone after two of five keys
    code, output = _provision("--batch", "--count", "1")
    tap.result(15)
    assert code == 1
    assert "Place it again to finish." in output
    assert chip.versions == [0, 1, 1, 0, 0]
    office.wait_until_empty()
    tap = card.tap_in_background(8000, until_apdus=60)
    code, output = _provision("--pupil", small_school.pupils[1].external_ref)
    tap.result(15)
    assert code == 0, output
    assert "key 3 → version 1; key 4 → version 1; key 0 → version 1" in output
    assert "key 1 →" not in output
    assert chip.versions == [1] * 5
    assert chip.failed_authentications == 0
