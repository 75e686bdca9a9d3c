"""The daemon's HTTP client and status, with a mock transport; and the daemon's imports."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from cardpay.reader.client import ServerUnreachable, TapNotAccepted, TillClient, TokenRejected
from cardpay.reader.journal import Journal
from cardpay.reader.status import read_status
from cardpay.reader.uplink import Uplink

T0 = datetime(2026, 11, 24, 11, 30, tzinfo=UTC)


def client_answering(status: int, body: object = None) -> TillClient:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer secret-token"
        return httpx.Response(status, json=body if body is not None else {"detail": "nope"})

    return TillClient("http://till.test", "secret-token", transport=httpx.MockTransport(handler))


def test_statuses_become_the_daemons_own_errors(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    tap = journal.record({"uid": "A1B2C3D4"}, T0)
    assert client_answering(200, {"accepted": True}).post_tap(tap) == {"accepted": True}
    for status, error in ((401, TokenRejected), (503, ServerUnreachable), (422, TapNotAccepted),
                          (429, ServerUnreachable)):
        with pytest.raises(error):
            client_answering(status).post_tap(tap)
    # A 429 throttles this till's address, not this tap: kept for later, never dropped.
    with pytest.raises(ServerUnreachable) as throttled:
        client_answering(429).post_tap(tap)
    assert not isinstance(throttled.value, TokenRejected)
    with pytest.raises(ServerUnreachable, match="deadline"):
        client_answering(200).post_tap(tap, deadline=time.monotonic() - 1)
    journal.close()


def test_a_tap_the_server_will_never_take_is_set_aside_and_does_not_block_the_queue(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.record({"uid": "A1B2C3D4"}, T0)
    journal.record({"uid": "A1B2C3D5"}, T0)
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        uid = httpx.Response(200, content=request.content).json()["card"]["uid"]
        sent.append(uid)
        if uid.endswith("4"):
            return httpx.Response(422, json={"detail": "read_at is too old"})
        return httpx.Response(200, json={"accepted": True})

    client = TillClient("http://till.test", "t", transport=httpx.MockTransport(handler))
    assert Uplink(journal, client).replay() == 2
    assert sent == ["A1B2C3D4", "A1B2C3D5"]
    assert journal.queue_length() == 0
    journal.close()


def test_status_reads_a_journal_from_another_process(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = Journal(path)
    journal.record({"uid": "A1B2C3D4"}, T0)
    journal.set_meta("server_state", "offline")
    journal.set_meta("snapshot_at", T0.isoformat())
    status = read_status(path)
    assert (status.queue, status.server_state, status.last_sync) == (1, "offline", T0)
    text = "\n".join(status.lines(T0))
    assert "1 tap(s) waiting" in text
    assert "offline" in text
    journal.close()
    assert read_status(path).queue == 1  # the daemon stopped: still readable


def test_the_daemon_never_loads_the_database_layer() -> None:
    code = (
        "import sys, cardpay.reader.daemon, cardpay.reader.status, hardware.readers.pcsc;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel', 'school')"
        " or m in ('cardpay.models', 'cardpay.till')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
