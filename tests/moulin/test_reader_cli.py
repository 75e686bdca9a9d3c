"""`moulin reader status` and `moulin mock card`, as an operator or a script uses them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from cardpay.reader.journal import Journal
from cardpay.sun import Keyring, SunMessage
from hardware.readers import CardRead, open_reader
from moulin.cli import app
from tests.hardware.pcscd import Pcscd

runner = CliRunner()
MASTER = "00112233445566778899AABBCCDDEEFF"


def test_status_says_how_the_daemon_is_doing(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = Journal(path)
    journal.record({"uid": "A1B2C3D4"}, datetime.now(UTC))
    journal.set_meta("server_state", "online")
    journal.set_meta("reader", "pcsc")
    journal.close()
    result = runner.invoke(app, ["reader", "status", "--journal", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 tap(s) waiting to be sent" in result.output
    assert "online" in result.output
    missing = runner.invoke(app, ["reader", "status", "--journal", str(tmp_path / "none.db")])
    assert missing.exit_code == 1
    assert "no journal" in _unwrapped(missing.output)


def test_the_daemon_needs_its_device_server_and_token(tmp_path: Path) -> None:
    result = runner.invoke(app, ["reader", "--device", "pcsc"])
    assert result.exit_code == 1
    assert "--device, --server and --token are needed" in result.output
    empty = tmp_path / "token"
    empty.write_text("")
    result = runner.invoke(
        app, ["reader", "--device", "pcsc", "--server", "http://x", "--token", str(empty)]
    )
    assert result.exit_code == 1
    assert "is empty" in _unwrapped(result.output)


def _unwrapped(output: str) -> str:
    """The console wraps lines at 80 columns, wherever a long temporary path puts the
    break (xdist's are longer: .../popen-gw0/...)."""
    return " ".join(output.split())


def _read_one(reads: list[CardRead], accepted: bool) -> threading.Thread:
    def run() -> None:
        reader = open_reader("pcsc:Virtual PCD")
        try:
            read = reader.wait_for_card(10)
            if read is not None:
                reads.append(read)
                reader.feedback(accepted)
        finally:
            reader.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_mock_card_taps_a_virtual_ntag424_with_keys_from_the_master_key(
    pcscd: Pcscd, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MOULIN_DATA_DIR", str(tmp_path))
    pcscd.wait_until_empty()
    reads: list[CardRead] = []
    reader = _read_one(reads, accepted=True)
    uid = "04A1B2C3D4E5F6"
    args = [
        "mock",
        "card",
        "--kind",
        "ntag424",
        "--uid",
        uid,
        "--hold-ms",
        "2500",
        "--port",
        str(pcscd.port),
        "--master-key",
        MASTER,
    ]
    result = runner.invoke(app, args)
    reader.join(15)
    assert result.exit_code == 0, result.output
    assert "reader showed: green + 1 beep(s)" in result.output
    [read] = reads
    assert read.sun_url is not None
    tap = Keyring(bytes.fromhex(MASTER)).verify(SunMessage.from_url(read.sun_url))
    assert (tap.uid.hex().upper(), tap.counter) == (uid, 1)
    pcscd.wait_until_empty()
    again = _read_one(reads, accepted=False)
    assert runner.invoke(app, args).exit_code == 0  # the counter goes on from the last tap
    again.join(15)
    assert (
        Keyring(bytes.fromhex(MASTER)).verify(SunMessage.from_url(reads[1].sun_url or "")).counter
        == 2
    )


def test_mock_card_without_pcscd_says_so(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["mock", "card", "--kind", "classic", "--uid", "A1B2C3D4", "--port", "1"]
    )
    assert result.exit_code == 1
    assert "is pcscd running?" in result.output
