"""Who may read /metrics, and the counters of several server workers added up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from moulin.commands.serve import shared_metrics
from school.metrics import MULTIPROC_ENV, allowed

TOKEN = "s" * 40


@pytest.mark.parametrize(("host", "authorization", "token", "ok"), [
    ("127.0.0.1", None, "", True),
    ("127.0.0.53", None, "", True),
    ("::1", None, "", True),
    ("10.0.0.7", None, "", False),
    ("192.168.1.20", f"Bearer {TOKEN}", "", False),  # no token configured: address only
    ("testclient", None, "", False),
    (None, None, "", False),
    ("10.0.0.7", f"Bearer {TOKEN}", TOKEN, True),
    ("10.0.0.7", f"bearer  {TOKEN} ", TOKEN, True),
    ("127.0.0.1", None, TOKEN, False),  # a token configured: needed from here too
    ("127.0.0.1", f"Bearer {TOKEN[:-1]}", TOKEN, False),
    ("127.0.0.1", f"Basic {TOKEN}", TOKEN, False),
])
def test_who_may_read_the_metrics(host: str | None, authorization: str | None, token: str,
                                  ok: bool) -> None:
    assert allowed(client_host=host, authorization=authorization, token=token) is ok


WORKER = """
from cardpay import metrics
metrics.TAPS.labels("accepted", "ok", "online", "false").inc()
metrics.TILL_API_SECONDS.labels("/api/till/taps").observe(0.02)
"""
SCRAPE = "from school.metrics import exposition; print(exposition().decode())"


def test_several_workers_counters_add_up(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    env = {**os.environ, MULTIPROC_ENV: str(folder)}
    folder.mkdir()
    for _ in range(3):  # three worker processes, each answering one tap
        subprocess.run([sys.executable, "-c", WORKER], env=env, check=True)
    text = subprocess.run([sys.executable, "-c", SCRAPE], env=env, check=True,
                          capture_output=True, text=True).stdout
    assert ('moulin_till_taps_total{mode="online",reason="ok",repeat="false",'
            'verdict="accepted"} 3.0') in text
    assert 'moulin_till_api_seconds_count{endpoint="/api/till/taps"} 3.0' in text
    # The answering worker's own CPU and memory would say nothing of the others.
    assert "process_resident_memory_bytes" not in text


def test_serve_starts_the_workers_shared_counters_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, "")  # put back as it was after the test
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1234.db").write_bytes(b"a previous run's counts")
    shared_metrics(folder)
    assert os.environ[MULTIPROC_ENV] == str(folder.resolve())
    assert list(folder.iterdir()) == []
