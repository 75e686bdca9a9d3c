"""The till's journal: nothing acknowledged is lost, order is kept, bad rows are set aside."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cardpay.reader.journal import Journal

T0 = datetime(2026, 11, 24, 11, 30, tzinfo=UTC)


@pytest.fixture
def journal(tmp_path: Path):  # type: ignore[no-untyped-def]
    j = Journal(tmp_path / "journal.db")
    yield j
    j.close()


def test_taps_come_back_in_order_until_sent(journal: Journal) -> None:
    taps = [journal.record({"uid": f"04AA{i:02X}"}, T0 + timedelta(seconds=i)) for i in range(5)]
    assert len({t.tap_id for t in taps}) == 5
    assert [t.tap_id for t in journal.unsent()] == [t.tap_id for t in taps]
    journal.mark_sent(taps[1].tap_id, {"accepted": True}, T0)
    assert [t.card["uid"] for t in journal.unsent()] == ["04AA00", "04AA02", "04AA03", "04AA04"]
    assert journal.queue_length() == 4


def test_offline_verdict_is_kept_with_the_tap(journal: Journal) -> None:
    tap = journal.record({"uid": "04AA"}, T0)
    journal.set_offline_verdict(tap.tap_id, {"accepted": True, "offline": True})
    assert journal.unsent()[0].offline_verdict == {"accepted": True, "offline": True}


def test_a_row_that_cannot_be_read_is_quarantined_not_dropped(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.db")
    good = j.record({"uid": "04AA"}, T0)
    bad = j.record({"uid": "04BB"}, T0)
    j._db.execute("UPDATE tap SET card = '{not json' WHERE tap_id = ?", (bad.tap_id,))
    assert [t.tap_id for t in j.unsent()] == [good.tap_id]
    [(seq, tap_id, reason)] = j.quarantined()
    assert (seq, tap_id) == (bad.seq, bad.tap_id)
    assert "Expecting" in reason
    j.close()


def test_a_corrupt_file_is_moved_aside_and_a_new_journal_started(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.write_bytes(b"this is not a database" * 200)
    j = Journal(path)
    assert j.queue_length() == 0
    j.record({"uid": "04AA"}, T0)
    j.close()
    aside = list(tmp_path.glob("journal.db.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes().startswith(b"this is not a database")


def test_prune_forgets_only_old_answered_taps(journal: Journal) -> None:
    old, recent, unsent = (journal.record({"uid": u}, T0) for u in ("01", "02", "03"))
    journal.mark_sent(old.tap_id, {}, T0 - timedelta(days=100))
    journal.mark_sent(recent.tap_id, {}, T0)
    assert journal.prune(T0 - timedelta(days=90)) == 1
    assert [t.tap_id for t in journal.unsent()] == [unsent.tap_id]


WRITER = textwrap.dedent("""
    import sys
    from datetime import datetime, UTC
    from pathlib import Path
    from cardpay.reader.journal import Journal
    j = Journal(Path(sys.argv[1]))
    for i in range(100000):
        tap = j.record({"uid": f"{i:08X}"}, datetime.now(UTC))
        print(tap.tap_id, flush=True)  # the acknowledgement
""")


def test_every_acknowledged_tap_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acknowledged = [proc.stdout.readline().strip() for _ in range(200)]
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate()
    acknowledged += [line for line in rest.splitlines() if len(line) == 36]
    j = Journal(path)
    kept = {t.tap_id for t in j.unsent(limit=1_000_000)}
    j.close()
    assert set(acknowledged) <= kept
    assert len(kept) - len(acknowledged) <= 1  # at most the one in flight
